'use strict'
// Child processes for the bench, and what /proc says about them. Every child
// is killed when the bench ends, on any path (error, Ctrl-C, timeout).
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const live = new Set()

process.on('exit', () => { for (const child of live) child.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// `node ...args` from the repository root, so that `require('.')` and
// `-r guru-meditation/register` resolve to this checkout.
function start (args, env = {}) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  child.out = ''
  child.err = ''
  child.stdout.setEncoding('utf8').on('data', d => { child.out += d })
  // Kept, not shown: Node's own report prints a line per report.
  child.stderr.setEncoding('utf8').on('data', d => { child.err = (child.err + d).slice(-2000) })
  child.exited = new Promise(resolve => child.on('exit', resolve)).then(() => live.delete(child))
  return child
}

async function stop (child) {
  child.kill('SIGKILL')
  await child.exited
}

/** Runs fn with the children started from specs ({ args, env }), then kills them. */
async function withChildren (specs, fn) {
  const children = specs.map(s => start(s.args, s.env))
  try {
    return await fn(children)
  } finally {
    await Promise.all(children.map(stop))
  }
}

/** The first match of re in the child's stdout; rejects when it exits or after ms. */
function waitFor (child, re, ms = 20000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = re.exec(child.out)
      if (m) { done(); resolve(m) }
    }
    const fail = why => {
      done()
      reject(new Error(`bench child ${why} before printing ${re}: ${child.err.trim() || '(no stderr)'}`))
    }
    const timer = setTimeout(() => fail(`gave nothing for ${ms} ms`), ms)
    const onExit = () => fail('exited')
    const done = () => {
      clearTimeout(timer)
      child.stdout.off('data', check)
      child.off('exit', onExit)
    }
    child.stdout.on('data', check)
    child.on('exit', onExit)
    check()
  })
}

// New files in dir whose name matches pattern and whose content parses as
// JSON (Node's own report appears before it is complete; ours appears
// complete). inotify wakes the waiter, so the bench does not spin on a CPU
// the service under test needs.
function watchFiles (dir, pattern) {
  const seen = new Set()
  let wake = () => {}
  const watcher = fs.watch(dir, () => wake())
  const complete = file => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))
    } catch {
      return null
    }
  }
  return {
    /** The next such file as { file, json }, or null after ms. */
    async next (ms) {
      const deadline = Date.now() + ms
      for (;;) {
        let incomplete = false
        for (const file of fs.readdirSync(dir)) {
          if (!pattern.test(file) || seen.has(file)) continue
          const json = complete(file)
          if (json) {
            seen.add(file)
            return { file, json }
          }
          incomplete = true
        }
        const left = deadline - Date.now()
        if (left <= 0) return null
        // A file seen incomplete is read again 1 ms later; otherwise inotify
        // wakes us (the timer is only a safety net).
        await new Promise(resolve => { wake = resolve; setTimeout(resolve, Math.min(left, incomplete ? 1 : 100)) })
      }
    },
    close: () => watcher.close()
  }
}

const CLK_TCK = 100 // sysconf(_SC_CLK_TCK) on Linux x64

/** CPU time of the whole process (all threads), in ms; 10 ms resolution. */
function cpuMs (pid) {
  // Fields after the command name, which may hold spaces: utime and stime are fields 14 and 15.
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLK_TCK
}

function statusField (file, name) {
  const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(fs.readFileSync(file, 'utf8'))
  return m ? Number(m[1]) : NaN
}

/** Voluntary context switches summed over the process's threads: how often they slept. */
function voluntarySwitches (pid) {
  let sum = 0
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      sum += statusField(`/proc/${pid}/task/${tid}/status`, 'voluntary_ctxt_switches')
    } catch {} // a thread that ended meanwhile
  }
  return sum
}

const threadCount = pid => fs.readdirSync(`/proc/${pid}/task`).length

/** Resident set now and at its peak, in MB. */
function memoryMB (pid) {
  const file = `/proc/${pid}/status`
  return { rss: statusField(file, 'VmRSS') / 1024, peak: statusField(file, 'VmHWM') / 1024 }
}

module.exports = { ROOT, sleep, start, stop, withChildren, waitFor, watchFiles, cpuMs, voluntarySwitches, threadCount, memoryMB }
