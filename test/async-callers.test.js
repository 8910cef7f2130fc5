'use strict'
// A thread busy inside an async function (the main thread, or a worker
// that never loaded the library): the report shows, below its JavaScript
// stack, the async functions awaiting it (the route that started it), as
// Node's error stacks do, in both views; the application's own
// Error.prepareStackTrace and stackTraceLimit are left as they were.
const t = require('tap')
const path = require('node:path')
const { FIXTURES, lineOf, spawnNode, waitForOutput, mainThreadSpun, signalForReport, tmpDir, mainThread, runGmr, sleep } = require('./helpers')
const fs = require('node:fs')

const FIXTURE = path.join(FIXTURES, 'async-route.js')

t.test('a main thread busy in an async function: its async callers, from the interrupt', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [FIXTURE], { env: { GMR_LOG_DIR: dir } })
  await waitForOutput(child, /spinning/)
  await mainThreadSpun(child)
  const report = await signalForReport(child, dir)
  const main = mainThread(report)
  t.equal(main.javascriptSource, 'interrupt')
  t.same(main.javascript.slice(0, 2).map(f => [f.function, f.line]), [['spin', lineOf(FIXTURE, 'SPIN')], ['loadOrders', lineOf(FIXTURE, 'CALL')]], 'the synchronous frames')
  t.same(main.asyncCallers.map(f => [f.function, f.file, f.line]), [['ordersRoute', FIXTURE, lineOf(FIXTURE, 'ROUTE')]], 'and the route awaiting it')
  t.ok(report.threads.filter(th => th.javascriptSource !== 'interrupt').every(th => th.asyncCallers === null), 'threads that did not answer: none read')
  const text = await runGmr([String(child.pid)])
  t.match(text.stdout, new RegExp(`^  at loadOrders \\(.*\\)\n  at async ordersRoute \\(${FIXTURE}:${lineOf(FIXTURE, 'ROUTE')}:\\d+\\)$`, 'm'), 'the text view, as Node writes them')
})

t.test('a worker that never loaded the library, busy in an async function: its async callers too', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [FIXTURE, 'worker'], { env: { GMR_LOG_DIR: dir } })
  await waitForOutput(child, /worker spinning/)
  await sleep(500)
  const report = await signalForReport(child, dir)
  const worker = report.threads.find(th => th.kind === 'worker')
  t.equal(worker.javascriptSource, 'interrupt')
  const line = marker => lineOf(FIXTURE, marker) - lineOf(FIXTURE, 'function route') + 1 // lines of the worker's source
  t.same(worker.javascript.slice(0, 2).map(f => [f.function, f.line]), [['spin', line('SPIN')], ['loadOrders', line('CALL')]], 'the synchronous frames')
  t.same(worker.asyncCallers.map(f => [f.function, f.file, f.line]), [['ordersRoute', '[worker eval]', line('ROUTE')]], 'and the route awaiting it')
  t.equal(mainThread(report).asyncCallers, null, 'the idle main thread (it answered no interrupt): none read')
})

for (const [scene, want] of [['mine', 'kept true 7'], ['accessor', 'ran 0'], ['absent', 'absent true 10']]) {
  t.test(`the application's Error.prepareStackTrace and stackTraceLimit are left as they were (${scene})`, async t => {
    const dir = tmpDir(t)
    const stop = path.join(dir, 'stop')
    const child = spawnNode(t, [FIXTURE, scene], { env: { GMR_LOG_DIR: dir, STOP_FILE: stop } })
    await waitForOutput(child, /spinning/)
    await mainThreadSpun(child)
    const report = await signalForReport(child, dir)
    const main = mainThread(report)
    t.equal(main.javascriptSource, 'interrupt')
    if (scene !== 'accessor') t.same(main.asyncCallers.map(f => f.function), ['ordersRoute'], 'read, and Error put back as it was')
    else t.equal(main.asyncCallers, null, 'an accessor there: not read')
    fs.writeFileSync(stop, '')
    await waitForOutput(child, new RegExp(`^${want}$`, 'm'))
    t.pass(want)
  })
}
