'use strict'
// Spawns real Node processes with the library and reads their reports.
const { spawn, execFile } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { validateReport, validateReportContent } = require('./helpers/report')

const ROOT = path.join(__dirname, '..')
const FIXTURES = path.join(__dirname, 'fixtures')
const REPORT_NAME = /^(.+)_gurumeditation_(\d{14})(_\d+)?$/

/**
 * A child process that the test always kills, with its output collected.
 * `fdLimit` runs it under `ulimit -n` (the shell execs node: same pid).
 * `node`: the command that stands for node, this one by default (the arm64
 * tests: qemu-aarch64 and its arguments, then the arm64 node; same pid).
 */
function spawnNode (t, args, { env = {}, cwd = ROOT, stdin = 'ignore', fdLimit = 0, node = [process.execPath] } = {}) {
  // Without the test runner's NODE_OPTIONS (its loader hooks would be in
  // every report, and in every worker): the service as a user runs it. The
  // runner's spawn wrapper puts NODE_OPTIONS back into any env it is given,
  // so env(1) takes it out again and execs node (same pid).
  const { NODE_OPTIONS, ...inherited } = process.env
  const command = ['/usr/bin/env', '-u', 'NODE_OPTIONS', ...node, ...args]
  if (fdLimit > 0) command.unshift('/bin/sh', '-c', `ulimit -n ${Number(fdLimit)} && exec "$@"`, 'sh')
  const child = spawn(command[0], command.slice(1), {
    cwd,
    env: { ...inherited, ...env },
    stdio: [stdin, 'pipe', 'pipe']
  })
  child.stdoutText = ''
  child.stderrText = ''
  child.stdout.on('data', d => { child.stdoutText += d })
  child.stderr.on('data', d => { child.stderrText += d })
  child.exited = new Promise(resolve => child.on('exit', (code, signal) => resolve({ code, signal })))
  // Its output complete: what it has not printed by now it never will.
  child.on('close', (code, signal) => { child.closed = { code, signal } })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  return child
}

/** Every process under pid, from /proc/PID/task/TID/children. */
function descendants (pid) {
  const out = []
  let tasks = []
  try { tasks = fs.readdirSync(`/proc/${pid}/task`) } catch { return out }
  for (const tid of tasks) {
    let children = ''
    try { children = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8') } catch {}
    for (const c of children.split(' ').filter(Boolean).map(Number)) out.push(c, ...descendants(c))
  }
  return out
}

/** A service whose own children (execSync's shell and sleep) are killed too, by pid. */
function spawnWithChildren (t, args, env, options = {}) {
  const child = spawnNode(t, args, { ...options, env })
  const seen = new Set()
  const note = () => { for (const pid of descendants(child.pid)) seen.add(pid) }
  const timer = setInterval(note, 100)
  t.teardown(() => {
    clearInterval(timer)
    note()
    for (const pid of seen) { try { process.kill(pid, 'SIGKILL') } catch {} }
  })
  return child
}

/** Whether the main thread of pid sleeps (its loop idle, in epoll): a signal then finds it free. */
function mainThreadAsleep (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('S')
  } catch { return false }
}

/** CPU time of the main thread of pid so far, in ms (utime + stime, 100 ticks a second). */
function mainThreadCpuMs (pid) {
  const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/**
 * Once the child's main thread has run `ms` of CPU from now: it is in the
 * loop it printed it was entering, not still on its way there (a loaded
 * machine can hold it between the print and the loop).
 */
async function mainThreadSpun (child, ms = 50) {
  const start = mainThreadCpuMs(child.pid)
  await until(`the main thread of ${child.pid} spinning`, () => mainThreadCpuMs(child.pid) - start >= ms, 15000, child)
}

async function until (what, check, timeoutMs = 15000, child = null) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    const ended = child?.closed
    if (ended || Date.now() > deadline) {
      // The end of a long output is where the failure shows.
      const output = child ? `\nstdout: ${child.stdoutText.slice(-4000)}\nstderr: ${child.stderrText.slice(-4000)}` : ''
      const why = ended ? `the process ended (code ${ended.code}, signal ${ended.signal}) before` : 'timed out waiting for'
      throw new Error(`${why} ${what}${output}`)
    }
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

function waitForOutput (child, re, stream = 'stdoutText', timeoutMs = 15000) {
  return until(`${re} on ${stream}`, () => child[stream].match(re), timeoutMs, child)
}

function tmpDir (t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-test-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function reportFiles (dir) {
  return fs.readdirSync(dir).filter(f => REPORT_NAME.test(f)).sort()
}

// Every report a test reads goes through test/helpers/report.js; a file is
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

/** Sends SIGUSR2 to the child and reads the report it brings: the n-th in dir, validated and parsed. */
async function signalForReport (child, dir, n = 1) {
  child.kill('SIGUSR2')
  const files = await waitForReports(dir, n, 15000, child)
  return readReport(files[n - 1])
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** The 1-based line of the fixture source that holds `marker`. */
function lineOf (file, marker) {
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const i = lines.findIndex(l => l.includes(marker))
  if (i < 0) throw new Error(`${marker} not in ${file}`)
  return i + 1
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

/** The test service (test/fixtures/app.js) and the line its stuck loop is on. */
const APP = path.join(FIXTURES, 'app.js')
const SPIN_LINE = lineOf(APP, 'SPIN-LINE')

const CLI = path.join(ROOT, 'dist', 'cli.js')

/**
 * Runs gmr with args, killed if it outlives timeoutMs; resolves { code,
 * stdout, stderr, ms }. The report it printed (or wrote to --out) is
 * validated. `as`: run it as that user (setpriv), for cross-user tests.
 */
function runGmr (args, { timeoutMs = 20000, as = null } = {}) {
  const t0 = Date.now()
  const argv = [CLI, ...args]
  const [command, commandArgs] = as === null
    ? [process.execPath, argv]
    // Without the runner's NODE_OPTIONS: its hooks write files that user cannot.
    : ['setpriv', [`--reuid=${as}`, `--regid=${as}`, '--clear-groups', '--', '/usr/bin/env', '-u', 'NODE_OPTIONS', process.execPath, ...argv]]
  return new Promise((resolve, reject) => {
    execFile(command, commandArgs, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const r = { code: err ? (err.code ?? 'killed') : 0, stdout, stderr, ms: Date.now() - t0 }
      try {
        if (r.code === 0 && !args.includes('--list') && !args.includes('--help')) {
          const out = args.indexOf('--out')
          validateReportContent(out >= 0 ? fs.readFileSync(path.resolve(args[out + 1]), 'utf8') : stdout, `gmr ${args.join(' ')}`)
        }
      } catch (e) { return reject(e) }
      resolve(r)
    })
  })
}

function mainThread (report) {
  return report.threads.find(th => th.kind === 'main')
}

/**
 * Sends `signal` to pid and waits until it is delivered (no longer pending
 * in /proc/PID/status), so that the next one is not merged into it: the
 * kernel keeps one pending signal of a kind. Tests that count signals use it.
 */
async function sendSignal (pid, signal = 'SIGUSR2', timeoutMs = 15000) {
  const bit = 1n << BigInt(os.constants.signals[signal] - 1)
  process.kill(pid, signal)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = /^ShdPnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    if (!m || (BigInt(`0x${m[1]}`) & bit) === 0n) return
    if (Date.now() > deadline) throw new Error(`${signal} to ${pid} still pending after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 1))
  }
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

function isAlive (pid) {
  try { process.kill(pid, 0); return true } catch { return false }
}

/**
 * Whether the addon this Node loads has the test-only hooks
 * (native/util/test_hooks.h; scripts/sanitize.sh builds them). Asked of a
 * child, once: loading the addon here would set up its handlers in the runner.
 */
let testHooksCached
function testHooks () {
  if (testHooksCached === undefined) {
    testHooksCached = require('node:child_process').execFileSync(process.execPath,
      ['-p', 'require("./dist/native").loadAddon().info().testHooks'], { cwd: ROOT, encoding: 'utf8' }).trim() === 'true'
  }
  return testHooksCached
}

module.exports = { sleep, signalForReport, mainThreadSpun, descendants, testHooks, mainThreadAsleep, checkReports, sendSignal, settledReports, runGmr, validateReport, validateReportContent, readReport, textReportIn, ROOT, FIXTURES, APP, SPIN_LINE, mainThread, REPORT_NAME, spawnNode, spawnWithChildren, until, waitForOutput, tmpDir, reportFiles, waitForReports, lineOf, waitForTextReport, isAlive }
