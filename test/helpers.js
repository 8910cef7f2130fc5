'use strict'
// Spawns real Node processes with the library and reads their reports.
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const FIXTURES = path.join(__dirname, 'fixtures')
const REPORT_NAME = /^(.+)_gurumeditation_(\d{14})(_\d+)?$/

/**
 * A child process that the test always kills, with its output collected.
 * `fdLimit` runs it under `ulimit -n` (the shell execs node: same pid).
 */
function spawnNode (t, args, { env = {}, cwd = ROOT, stdin = 'ignore', fdLimit = 0 } = {}) {
  // Without the test runner's NODE_OPTIONS (its loader hooks would be in
  // every report, and in every worker): the service as a user runs it. The
  // runner's spawn wrapper puts NODE_OPTIONS back into any env it is given,
  // so env(1) takes it out again and execs node (same pid).
  const { NODE_OPTIONS, ...inherited } = process.env
  const command = ['/usr/bin/env', '-u', 'NODE_OPTIONS', process.execPath, ...args]
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
function spawnWithChildren (t, args, env) {
  const child = spawnNode(t, args, { env })
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

async function until (what, check, timeoutMs = 15000, child = null) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) {
      const output = child ? `\nstdout: ${child.stdoutText}\nstderr: ${child.stderrText}` : ''
      throw new Error(`timed out waiting for ${what}${output}`)
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

async function waitForReports (dir, count = 1, timeoutMs = 15000, child = null) {
  await until(`${count} report(s) in ${dir}`, () => reportFiles(dir).length >= count, timeoutMs, child)
  return reportFiles(dir).map(f => path.join(dir, f))
}

/** The 1-based line of the fixture source that holds `marker`. */
function lineOf (file, marker) {
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const i = lines.findIndex(l => l.includes(marker))
  if (i < 0) throw new Error(`${marker} not in ${file}`)
  return i + 1
}

/** The text report that ends the child's stderr, once it is complete. */
function waitForTextReport (child, timeoutMs = 15000) {
  return until('a text report on stderr', () => {
    const start = child.stderrText.indexOf('====                        Guru Meditation')
    if (start < 0) return null
    const end = child.stderrText.indexOf('End of Guru Meditation Report', start)
    return end < 0 ? null : child.stderrText.slice(start, end)
  }, timeoutMs, child)
}

/** The test service (test/fixtures/app.js) and the line its stuck loop is on. */
const APP = path.join(FIXTURES, 'app.js')
const SPIN_LINE = lineOf(APP, 'SPIN-LINE')

function mainThread (report) {
  return report.threads.find(th => th.kind === 'main')
}

function isAlive (pid) {
  try { process.kill(pid, 0); return true } catch { return false }
}

module.exports = { ROOT, FIXTURES, APP, SPIN_LINE, mainThread, REPORT_NAME, spawnNode, spawnWithChildren, until, waitForOutput, tmpDir, reportFiles, waitForReports, lineOf, waitForTextReport, isAlive }
