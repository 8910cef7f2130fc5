'use strict'
// A thread that cannot answer at all: a worker stopped by a tracer, as a
// debugger stops it. The report still comes, names it a worker and says why
// its stack is missing; once the worker runs again, the capture signal it
// was sent comes late and does nothing, and the next report has it whole.
const t = require('tap')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { FIXTURES, spawnNode, waitForOutput, tmpDir, isAlive, signalForReport } = require('./helpers')

t.test('a worker stopped by a tracer: the report comes, and says so', async t => {
  const build = tmpDir(t)
  const stopperPath = path.join(build, 'stopper')
  const cc = spawnSync('cc', ['-O1', '-o', stopperPath, path.join(FIXTURES, 'stopper.c')], { encoding: 'utf8' })
  if (cc.status !== 0) throw new Error(`cannot build the stopper: ${cc.stderr}`)

  const dir = tmpDir(t)
  const child = spawnNode(t, [path.join(FIXTURES, 'stopped.js')], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) }
  })
  await waitForOutput(child, /^ready/m)
  const first = await signalForReport(child, dir, 1)
  const victim = first.threads.find(th => th.kind === 'worker')
  t.ok(victim && victim.native.length > 0, 'the worker, with its native stack, before')

  const stopper = spawn(stopperPath, [String(victim.tid)], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stopperOut = ''
  stopper.stdout.on('data', d => { stopperOut += d })
  stopper.stderr.on('data', d => { stopperOut += d })
  const stopperExit = new Promise(resolve => stopper.on('exit', resolve))
  t.teardown(() => { if (stopper.exitCode === null) stopper.kill('SIGKILL') })
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stopper did not stop the worker: ${stopperOut}`)), 10000)
    stopper.stdout.on('data', () => { if (/stopped/.test(stopperOut)) { clearTimeout(timer); resolve() } })
  })
  t.match(fs.readFileSync(`/proc/${child.pid}/task/${victim.tid}/stat`, 'utf8'), /\) t /, 'the worker is in a tracing stop')

  const start = Date.now()
  const stopped = await signalForReport(child, dir, 2)
  t.comment(`the report came ${Date.now() - start} ms after the signal`)
  const still = stopped.threads.find(th => th.tid === victim.tid)
  t.ok(still, 'the stopped worker is listed')
  t.equal(still.kind, 'worker', 'as a worker: the library knows its isolate')
  t.same(still.native, [], 'without a native stack')
  t.match(still.note, /did not answer the capture signal in time/, `its note says why (${still.note})`)
  const main = stopped.threads.find(th => th.kind === 'main')
  t.ok(main && main.native.length > 0, 'the main thread with its stack')
  t.same(stopped.errors, [], 'no errors')

  stopper.stdin.end()
  await stopperExit
  t.match(stopperOut, /detached/, 'the stopper let the worker go')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.ok(isAlive(child.pid), 'the late capture signal did nothing')
  const after = await signalForReport(child, dir, 3)
  const back = after.threads.find(th => th.tid === victim.tid)
  t.ok(back && back.kind === 'worker' && back.native.length > 0, 'the worker whole again, in the next report')
  t.ok(back.javascript.some(f => f.function === 'crunch'), 'with its JavaScript')
  t.notMatch(child.stderrText, /guru-meditation/, 'nothing on stderr')
})
