'use strict'
// Real Node processes for the tests: spawned (always killed, with a
// timeout), watched through /proc, and signalled.
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const { ROOT } = require('./paths')

/**
 * A child process that the test always kills, with its output collected.
 * `fdLimit` runs it under `ulimit -n` (the shell execs node: same pid);
 * `wrapper` is a command node runs under (`['unshare', '--pid', ...]`);
 * `node` the command that stands for node, this one by default (the arm64
 * tests: qemu-aarch64 and its arguments, then the arm64 node; same pid).
 */
function spawnNode (t, args, { env = {}, cwd = ROOT, stdin = 'ignore', fdLimit = 0, wrapper = [], node = [process.execPath] } = {}) {
  // Without the test runner's NODE_OPTIONS (its loader hooks would be in
  // every report, and in every worker): the service as a user runs it. The
  // runner's spawn wrapper puts NODE_OPTIONS back into any env it is given,
  // so env(1) takes it out again and execs node (same pid).
  const { NODE_OPTIONS, ...inherited } = process.env
  const command = ['/usr/bin/env', '-u', 'NODE_OPTIONS', ...wrapper, ...node, ...args]
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

function isAlive (pid) {
  try { process.kill(pid, 0); return true } catch { return false }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

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

module.exports = { spawnNode, descendants, spawnWithChildren, mainThreadAsleep, mainThreadSpun, until, waitForOutput, sendSignal, isAlive, sleep, testHooks }
