'use strict'
// stallThreshold: a report comes on its own when an event loop stops
// turning, once per stall; an idle loop is not stalled.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { FIXTURES, spawnWithChildren, waitForOutput, tmpDir, reportFiles, lineOf, isAlive, readReport, sleep } = require('./helpers')

const APP = path.join(FIXTURES, 'stall.js')
const BUSY_LINE = lineOf(APP, 'BUSY-LINE')

function service (t, scene, options = {}) {
  const dir = tmpDir(t)
  const child = spawnWithChildren(t, [APP, scene], { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json', stallThreshold: 400, ...options }) })
  const reports = () => reportFiles(dir).map(f => readReport(path.join(dir, f)))
  return { child, reports }
}

t.test('a busy main thread: one report per stall, naming the thread and where it is stuck', async t => {
  const { child, reports } = service(t, 'busy')
  await waitForOutput(child, /done/, 'stdoutText', 20000)
  await sleep(300)
  const got = reports()
  t.equal(got.length, 2, 'two stalls, two reports')
  for (const r of got) {
    t.equal(r.package.trigger.kind, 'stall')
    t.match(r.package.trigger.detail, new RegExp(`^main thread \\(tid ${child.pid}\\): its event loop has not turned for \\d+\\.\\d s$`))
    const main = r.threads.find(th => th.kind === 'main')
    t.equal(main.javascript[0].function, 'busyFor')
    t.equal(main.javascript[0].line, BUSY_LINE)
    // Sampled at each check (every 100 ms) while the loop did not turn.
    t.ok(r.samples && r.samples.count >= 2, 'samples over the stall window', { samples: r.samples })
    t.equal(r.samples.intervalMs, 100)
    const sampled = r.samples.threads.find(th => th.tid === child.pid)
    t.same(sampled.places[0], { where: `busyFor (${APP}:${BUSY_LINE})`, count: r.samples.count }, 'in busyFor in every sample')
    t.equal(sampled.stuck, true, 'stuck: its JavaScript stack never changed (its native frames do, with each Date.now)')
    const idle = r.samples.threads.filter(th => th.label.includes('(v8-platform)'))
    t.ok(idle.length > 0 && idle.every(th => !th.stuck), "V8's idle platform threads are not stuck", { idle })
  }
  t.ok(isAlive(child.pid))
})

t.test('an idle loop is not a stall', async t => {
  const { child, reports } = service(t, 'idle')
  await waitForOutput(child, /done/, 'stdoutText', 20000)
  t.same(reports(), [], 'no report')
})

t.test('a main thread blocked in execFileSync is a stall (its loop waits on another epoll)', async t => {
  const { child, reports } = service(t, 'exec')
  await waitForOutput(child, /done/, 'stdoutText', 20000)
  await sleep(300)
  const got = reports()
  t.equal(got.length, 1)
  t.match(got[0].package.trigger.detail, /^main thread .*has not turned/)
  t.equal(got[0].threads.find(th => th.kind === 'main').vmState, 'EXTERNAL')
})

t.test('a worker that never loaded the library stalls: the report names it', async t => {
  const { child, reports } = service(t, 'worker')
  await waitForOutput(child, /done/, 'stdoutText', 20000)
  await sleep(300)
  const got = reports()
  t.equal(got.length, 1, 'one report', { stdout: child.stdoutText, stderr: child.stderrText.slice(0, 2000) })
  t.match(got[0].package.trigger.detail, /^worker 1 \(tid \d+\): its event loop has not turned for/)
  const tid = Number(/tid (\d+)/.exec(got[0].package.trigger.detail)[1])
  const sampled = got[0].samples && got[0].samples.threads.find(th => th.tid === tid)
  t.ok(sampled, 'the worker in the samples', { samples: got[0].samples })
  t.equal(sampled.places[0].count, got[0].samples.count, 'in its busy loop in every sample')
  t.match(sampled.places[0].where, /^<anonymous> \(\[worker eval\]:1\)$/)
})

t.test('stallThreshold is checked at setup', async t => {
  const { resolveOptions } = require('../dist/options')
  t.equal(resolveOptions({}).stallThreshold, 0, 'off by default')
  t.equal(resolveOptions({ stallThreshold: false }).stallThreshold, 0)
  t.equal(resolveOptions({}, { GMR_STALL_THRESHOLD: '2000' }).stallThreshold, 2000)
  t.throws(() => resolveOptions({ stallThreshold: 10 }), { name: 'GuruMeditationOptionError', option: 'option stallThreshold' })
  t.throws(() => resolveOptions({}, { GMR_STALL_THRESHOLD: 'soon' }), { option: 'environment variable GMR_STALL_THRESHOLD' })
})
