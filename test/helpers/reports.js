'use strict'
// Report files: found, waited for, read, each one validated once
// (validate.js), and a signal that brings one.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { until } = require('./processes')
const { validateReport, validateReportContent } = require('./validate')

const REPORT_NAME = /^(.+)_gurumeditation_(\d{14})(_\d+)?$/

function tmpDir (t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-test-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function reportFiles (dir) {
  return fs.readdirSync(dir).filter(f => REPORT_NAME.test(f)).sort()
}

// Every report a test reads goes through test/helpers/validate.js; a file is
// checked once (it is complete once it is there: linked into place whole).
const validated = new Map()

/** The report in `file`, validated: the parsed JSON, or the text view's threads and sections. */
function readReport (file) {
  const content = fs.readFileSync(file, 'utf8')
  const st = fs.statSync(file)
  const key = `${file}\0${st.ino}\0${st.size}\0${st.mtimeMs}`
  if (!validated.has(key)) validated.set(key, validateReportContent(content, file))
  return content.trimStart().startsWith('{') ? JSON.parse(content) : content
}

/** The report files in dir now, each validated (for tests that count them). */
function checkReports (dir) {
  const files = reportFiles(dir).map(f => path.join(dir, f))
  for (const file of files) readReport(file)
  return files
}

/** The report files in dir once there are `count`, each validated. */
async function waitForReports (dir, count = 1, timeoutMs = 15000, child = null) {
  await until(`${count} report(s) in ${dir}`, () => reportFiles(dir).length >= count, timeoutMs, child)
  const files = reportFiles(dir).map(f => path.join(dir, f))
  for (const file of files) readReport(file)
  return files
}

/** The report files in dir once none has appeared for quietMs, each validated. */
async function settledReports (dir, quietMs = 1500, timeoutMs = 30000) {
  let count = -1
  let since = Date.now()
  await until(`the reports in ${dir} to settle`, () => {
    const now = reportFiles(dir).length
    if (now !== count) { count = now; since = Date.now() }
    return Date.now() - since >= quietMs
  }, timeoutMs)
  const files = reportFiles(dir).map(f => path.join(dir, f))
  for (const file of files) readReport(file)
  return files
}

/** Sends SIGUSR2 to the child and reads the report it brings: the n-th in dir, validated and parsed. */
async function signalForReport (child, dir, n = 1) {
  child.kill('SIGUSR2')
  const files = await waitForReports(dir, n, 15000, child)
  return readReport(files[n - 1])
}

const RULE = '='.repeat(72)

/** The first whole text report in `text` from `from` (its first and last rule included), or null. */
function textReportIn (text, from = 0) {
  const title = text.indexOf('====                        Guru Meditation', from)
  if (title < 0) return null
  const start = text.lastIndexOf(RULE, title)
  const end = text.indexOf('End of Guru Meditation Report', title)
  const close = end < 0 ? -1 : text.indexOf(RULE, end)
  if (start < 0 || close < 0) return null
  return { start, end: close + RULE.length, text: text.slice(start, close + RULE.length) }
}

/** The text report on the child's stderr, once it is complete, validated; up to its last section. */
async function waitForTextReport (child, timeoutMs = 15000) {
  const found = await until('a text report on stderr', () => textReportIn(child.stderrText), timeoutMs, child)
  validateReport(null, found.text, 'the text report on stderr')
  return found.text.slice(found.text.indexOf('====                        Guru Meditation'), found.text.indexOf('End of Guru Meditation Report'))
}

function mainThread (report) {
  return report.threads.find(th => th.kind === 'main')
}

module.exports = { REPORT_NAME, tmpDir, reportFiles, readReport, checkReports, waitForReports, settledReports, signalForReport, textReportIn, waitForTextReport, mainThread }
