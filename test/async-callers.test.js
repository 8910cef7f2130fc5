'use strict'
// A main thread busy inside an async function: the report shows, below its
// JavaScript stack, the async functions awaiting it (the route that started
// it), as Node's error stacks do, in both views.
const t = require('tap')
const path = require('node:path')
const { FIXTURES, lineOf, spawnNode, waitForOutput, mainThreadSpun, signalForReport, tmpDir, mainThread, runGmr } = require('./helpers')
const { asyncCallers } = require('../dist/async-callers')

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
  t.ok(report.threads.filter(th => th !== main).every(th => th.asyncCallers === null), 'other threads: not read')
  const text = await runGmr([String(child.pid)])
  t.match(text.stdout, new RegExp(`^  at loadOrders \\(.*\\)\n  at async ordersRoute \\(${FIXTURE}:${lineOf(FIXTURE, 'ROUTE')}:\\d+\\)$`, 'm'), 'the text view, as Node writes them')
})

t.test("the application's Error.prepareStackTrace and stackTraceLimit are left as they were; an accessor is never run", async t => {
  const mine = () => 'mine'
  Error.prepareStackTrace = mine
  Error.stackTraceLimit = 7
  t.same(asyncCallers(), [], 'none here (no async function awaits this test)')
  t.equal(Error.prepareStackTrace, mine)
  t.equal(Error.stackTraceLimit, 7)
  delete Error.prepareStackTrace
  t.same(asyncCallers(), [])
  t.notOk('prepareStackTrace' in Error, 'absent before, absent after')
  let ran = 0
  Object.defineProperty(Error, 'prepareStackTrace', { get () { ran++; return undefined }, set () { ran++ }, configurable: true })
  t.equal(asyncCallers(), null, 'an accessor there: not read')
  t.equal(ran, 0, 'and not run')
  delete Error.prepareStackTrace
  Error.stackTraceLimit = 10
})
