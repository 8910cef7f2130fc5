'use strict'
// npm run bench: the capture figures, each beside its target, as medians of
// several runs in fresh processes. Ratios are measured side by side in the
// same run, so a noisy machine moves both sides alike.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const RUNS = Number(process.env.BENCH_RUNS || 5)

const median = xs => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

function line (name, value, unit, target, holds) {
  const mark = holds === null ? '    ' : holds ? 'ok  ' : 'MISS'
  console.log(`${mark} ${name.padEnd(58)} ${String(value).padStart(9)} ${unit.padEnd(3)} ${target}`)
}

// A child that prints one JSON line of figures.
function figures (code, env = {}) {
  const r = spawnSync(process.execPath, ['-e', code], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60000 })
  const m = /FIGURES (.*)/.exec(r.stdout)
  if (!m) throw new Error(`bench child failed: ${r.stderr || r.stdout}`)
  return JSON.parse(m[1])
}

function setupCost () {
  const code = withLib => `
    const rss0 = process.memoryUsage().rss
    const t0 = process.hrtime.bigint()
    ${withLib ? "require('.').setupAutorun('1', { signal: 'SIGUSR2' })" : ''}
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    setTimeout(() => console.log('FIGURES ' + JSON.stringify({ ms, rss: process.memoryUsage().rss - rss0 })), 1500)
  `
  const withLib = []
  const without = []
  for (let i = 0; i < RUNS; i++) {
    withLib.push(figures(code(true)))
    without.push(figures(code(false)))
  }
  line('set-up, require to ready', median(withLib.map(f => f.ms)).toFixed(1), 'ms', 'target <= 15 ms', median(withLib.map(f => f.ms)) <= 15)
  const added = (median(withLib.map(f => f.rss)) - median(without.map(f => f.rss))) / 1e6
  line('RSS added once set up (idle, 1.5 s after)', added.toFixed(1), 'MB', 'target <= 5 MB', added <= 5)
}

// A service with main + 8 workers + the 4 threadpool threads, all stuck or
// all idle; the time from kill -USR2 to the report file.
const SERVICE = busy => `
  const { Worker } = require('node:worker_threads')
  const fs = require('node:fs')
  require('.').setupAutorun('1', { logDir: process.env.LOG_DIR, format: 'json', sectionTimeout: 100 })
  const work = ${busy ? '"for (;;) {}"' : '"setInterval(() => {}, 1000)"'}
  for (let i = 0; i < 8; i++) new Worker(work, { eval: true }).unref()
  // Fill the threadpool: four fs calls in flight at a time.
  const pump = () => fs.readFile('/proc/self/status', pump)
  for (let i = 0; i < 4; i++) pump()
  setTimeout(() => {
    console.log('ready')
    ${busy ? 'for (;;) {}' : ''}
  }, 1000)
`

async function reportLatency (busy) {
  const times = []
  const interrupted = []
  let threads = 0
  for (let i = 0; i < RUNS; i++) {
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-bench-'))
    const child = spawn(process.execPath, ['-e', SERVICE(busy)], { cwd: ROOT, env: { ...process.env, LOG_DIR: logDir }, stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      await new Promise((resolve, reject) => {
        child.stdout.on('data', d => { if (String(d).includes('ready')) resolve() })
        child.on('exit', () => reject(new Error('bench service exited')))
      })
      await new Promise(resolve => setTimeout(resolve, 200))
      // Warm: the first report reads symbol tables.
      const t0 = process.hrtime.bigint()
      process.kill(child.pid, 'SIGUSR2')
      let file
      while (!(file = fs.readdirSync(logDir).find(f => /^[^.].*_gurumeditation_\d{14}$/.test(f)))) await new Promise(resolve => setImmediate(resolve))
      times.push(Number(process.hrtime.bigint() - t0) / 1e6)
      const report = JSON.parse(fs.readFileSync(path.join(logDir, file), 'utf8'))
      threads = report.threads.length
      for (const t of report.threads) if (t.interruptedUs !== null) interrupted.push(t.interruptedUs)
    } finally {
      child.kill('SIGKILL')
      fs.rmSync(logDir, { recursive: true, force: true })
    }
  }
  return { ms: median(times), threads, interruptedUs: median(interrupted) }
}

// Node's own diagnostic report of the same process shape, for comparison
// (it cannot run while the main thread is stuck, so the main thread is free).
function nodeReport () {
  return figures(`
    const { Worker } = require('node:worker_threads')
    for (let i = 0; i < 8; i++) new Worker('for (;;) {}', { eval: true }).unref()
    setTimeout(() => {
      const times = []
      for (let i = 0; i < ${RUNS}; i++) {
        const t0 = process.hrtime.bigint()
        process.report.getReport()
        times.push(Number(process.hrtime.bigint() - t0) / 1e6)
      }
      times.sort((a, b) => a - b)
      console.log('FIGURES ' + JSON.stringify({ ms: times[Math.floor(times.length / 2)] }))
      process.exit(0)
    }, 1000)
  `)
}

async function main () {
  console.log(`guru-meditation bench: node ${process.version}, ${os.cpus().length} CPUs, medians of ${RUNS} runs\n`)
  setupCost()
  const idle = await reportLatency(false)
  line(`signal to report file, ${idle.threads} threads, none running JS`, idle.ms.toFixed(1), 'ms', 'target <= 50 ms (report includes 100 ms-capped sections)', null)
  const busy = await reportLatency(true)
  line(`signal to report file, ${busy.threads} threads, all running JS (main stuck)`, busy.ms.toFixed(1), 'ms', 'includes the 500 ms wait for the stuck main thread', null)
  line('time a thread is held by the capture signal (median)', busy.interruptedUs.toFixed(1), 'us', 'target <= 200 us', busy.interruptedUs <= 200)
  const node = nodeReport()
  line("Node's process.report.getReport(), 8 busy workers, main free", node.ms.toFixed(1), 'ms', 'for comparison', null)
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
