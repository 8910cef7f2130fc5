'use strict'
// Every thread of a real process, captured on a real signal: workers that
// never load the library (busy, parked, idle, started late, in GC, coming
// and going), the libuv threadpool blocked in open(), a main thread blocked
// in a child process or backtracking in a regular expression.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { FIXTURES, spawnWithChildren, waitForOutput, tmpDir, reportFiles, lineOf, isAlive, until, checkReports, sleep, signalForReport, mainThreadAsleep } = require('./helpers')

const APP = path.join(FIXTURES, 'threads.js')
const WORKER = path.join(FIXTURES, 'threads-worker.js')
const NAMES_KNOWN = Number(process.versions.node.split('.')[0]) >= 22 // Worker's name option reaches the worker from Node 22

const mainOf = report => report.threads.find(th => th.kind === 'main')

function service (t, scene, { env = {}, nodeArgs = [] } = {}) {
  const dir = tmpDir(t)
  const child = spawnWithChildren(t, [...nodeArgs, APP, scene], {
    GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }),
    GMR_TEST_DIR: dir,
    ...env
  })
  return { child, dir }
}

t.test('workers that never loaded the library: busy, parked and idle, each with its threadId and name', async t => {
  const late = path.join(tmpDir(t), 'late')
  const { child, dir } = service(t, 'workers', { env: { GMR_TEST_LATE: late } })
  await waitForOutput(child, /^ready/m)
  await sleep(500) // the crunching worker is in its loop, the parked one in Atomics.wait
  const first = await signalForReport(child, dir)
  const workers = first.threads.filter(th => th.kind === 'worker')
  t.equal(workers.length, 3, 'three workers', { workers: workers.map(w => `${w.tid} ${w.threadId} ${w.note}`) })
  t.same(workers.map(w => w.threadId).sort(), [1, 2, 3], 'each with its threadId', { workers: workers.map(w => `${w.tid} ${w.threadId} ${w.vmState} ${w.note}`) })
  const byName = name => workers.find(w => w.workerName === name)
  const byId = id => workers.find(w => w.threadId === id)
  if (NAMES_KNOWN) {
    t.same(workers.map(w => w.workerName).sort(), ['cruncher', 'idler', 'parked'], "each with its Worker's name")
  } else {
    t.ok(workers.every(w => w.workerName === null), 'Node 20 does not tell a worker its name')
  }
  t.equal(mainOf(first).threadId, 0, 'the main thread is threadId 0')
  // Node's inspector thread blocks every signal: its stack is read from
  // /proc while it waits in a system call.
  const inspector = first.threads.find(th => th.kind === 'inspector')
  t.ok(inspector && inspector.native.some(f => f.symbol === 'uv_sem_wait'), 'the inspector thread, read from /proc, waiting in uv_sem_wait')
  t.match(inspector && inspector.note, /^idle, waiting for SIGUSR1 to start the inspector \(its stack read from \/proc: it blocks signals\)$/)

  const cruncher = NAMES_KNOWN ? byName('cruncher') : byId(1)
  t.equal(cruncher.vmState, 'JS')
  t.equal(cruncher.javascriptSource, 'interrupt', 'a busy worker answers its interrupt')
  t.same(cruncher.javascript[0], { ...cruncher.javascript[0], function: 'crunchNumbers', file: WORKER, line: lineOf(WORKER, 'CRUNCH-LINE') })
  t.equal(cruncher.note, `running JavaScript in crunchNumbers (threads-worker.js:${lineOf(WORKER, 'CRUNCH-LINE')})`)

  const parked = NAMES_KNOWN ? byName('parked') : byId(2)
  t.equal(parked.vmState, 'ATOMICS_WAIT')
  t.ok(parked.javascript.some(f => f.function === 'parkForever' && f.file === WORKER), 'parkForever in its stack')
  t.match(parked.note, /^waiting in Atomics\.wait in parkForever \(threads-worker\.js:\d+\)$/)

  const idler = NAMES_KNOWN ? byName('idler') : byId(3)
  t.equal(idler.note, 'idle in the event loop')
  t.ok(idler.native.some(f => f.symbol === 'uv_run'), 'uv_run in its native stack')
  for (const w of workers) {
    t.ok(w.native.some(f => /node::worker::Worker::Run/.test(f.symbol)), `worker ${w.threadId} runs under Worker::Run`)
  }

  // A worker started after set-up and after the first report is there too.
  fs.writeFileSync(late, '')
  await waitForOutput(child, /late worker online/)
  await sleep(200)
  const second = await signalForReport(child, dir, 2)
  const before = new Set(workers.map(w => w.tid))
  const added = second.threads.filter(th => th.kind === 'worker' && !before.has(th.tid))
  t.equal(added.length, 1, 'the late worker is listed')
  t.ok(added[0].javascript !== null && added[0].vmState !== null, 'as a JavaScript thread with its VM state')
  t.equal(added[0].threadId, 4, 'with its threadId')
  if (NAMES_KNOWN) t.equal(added[0].workerName, 'latecomer')
  t.ok(isAlive(child.pid), 'the process survives every report')
})

t.test('the threadpool saturated by opens of FIFOs nobody writes: four threads blocked in open', async t => {
  const { child, dir } = service(t, 'threadpool')
  await waitForOutput(child, /^ready/m)
  // It says ready before its loop is back in epoll: a loaded machine can
  // hold it in between, where it is not yet free.
  await until('the main thread asleep', () => mainThreadAsleep(child.pid), 15000, child)
  const r = await signalForReport(child, dir)
  const pool = r.threads.filter(th => th.kind === 'libuv-threadpool')
  t.equal(pool.length, 4, 'the four threadpool threads')
  for (const th of pool) {
    const symbols = th.native.map(f => f.symbol)
    t.match(symbols[0], /^(__libc_)?open(64)?$/, `thread ${th.tid} is in open`)
    t.ok(symbols.includes('uv__fs_work'), 'for an fs request')
    t.match(th.note, /^working on an fs request, in (__libc_)?open(64)?/)
  }
  t.equal(mainOf(r).note, 'idle in the event loop', 'the main thread is free')
  t.ok(isAlive(child.pid))
})

t.test('a main thread blocked in execFileSync: its JavaScript named from the code map, its native frames from the binary', async t => {
  const { child, dir } = service(t, 'exec')
  await waitForOutput(child, /blocking/)
  await sleep(300)
  const r = await signalForReport(child, dir)
  const main = mainOf(r)
  t.equal(main.vmState, 'EXTERNAL')
  t.equal(main.javascriptSource, 'code-map')
  const tool = main.javascript.find(f => f.function === 'waitForTool')
  t.ok(tool, 'waitForTool is named')
  t.equal(tool.file, APP)
  t.ok(main.javascript.some(f => f.function === 'execFileSync' && f.file === 'node:child_process'), 'under execFileSync')
  const symbols = main.native.map(f => f.symbol)
  t.ok(symbols.includes('uv_run'), "the child's loop: uv_run")
  t.ok(symbols.some(s => /SyncProcessRunner/.test(s)), 'node::SyncProcessRunner')
  t.match(main.note, /^blocked in a native call from waitForTool \(threads\.js:\d+\)$/, { note: main.note, js: main.javascript.map(f => f.function) })
  t.equal(r.package.writtenBy, 'reporter environment (the main thread was blocked)')
  t.ok(isAlive(child.pid))
})

t.test('a regular expression backtracking catastrophically: the report names it, and the match still ends right', async t => {
  const { child, dir } = service(t, 'regex')
  await waitForOutput(child, /matching/)
  await sleep(300)
  const r = await signalForReport(child, dir)
  const main = mainOf(r)
  t.equal(main.vmState, 'JS')
  t.equal(main.javascript[0].function, 'matchEvil')
  t.equal(main.javascript[0].line, lineOf(APP, 'REGEX-LINE'), 'the exact line')
  t.equal(r.package.writtenBy, 'main thread (interrupt: it was busy running JavaScript)')
  // Written between two steps of the match: the match goes on undisturbed.
  await waitForOutput(child, /regex done (\w+)/, 'stdoutText', 60000)
  t.match(child.stdoutText, /regex done false/, 'the match gives its right answer')
  t.ok(isAlive(child.pid))
})

t.test('a worker in heavy garbage collection: the report says so', async t => {
  const { child, dir } = service(t, 'gc', { nodeArgs: ['--expose-gc'] })
  await waitForOutput(child, /^ready/m)
  // The worker spends nearly all its time collecting: a report or two
  // catches it inside a collection.
  let collector
  for (let n = 1; n <= 5 && !(collector && collector.vmState === 'GC'); n++) {
    collector = (await signalForReport(child, dir, n)).threads.find(th => th.kind === 'worker')
    await sleep(200)
  }
  t.equal(collector.vmState, 'GC')
  t.match(collector.note, /^in garbage collection/, { note: collector.note, vmState: collector.vmState })
  t.ok(isAlive(child.pid))
})

t.test('a main thread near its heap limit, collecting without pause: reports come, say so, and do not tip it over', async t => {
  const dir = tmpDir(t)
  const HEAP_MB = 32
  const child = spawnWithChildren(t, [`--max-old-space-size=${HEAP_MB}`, path.join(FIXTURES, 'heap-limit.js')], {
    GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }),
    GMR_TEST_FILL_MB: '28'
  })
  const [, used] = await waitForOutput(child, /^ready ([\d.]+) of/m)
  t.ok(Number(used) >= HEAP_MB * 0.85, `${used} MB of its ${HEAP_MB} MB old space kept alive`)
  await sleep(300)
  // Collecting most of the time: a report or a few catch it in a collection.
  const seen = []
  let main
  for (let n = 1; n <= 40 && !(main && main.vmState === 'GC'); n++) {
    const r = await signalForReport(child, dir, n)
    t.same(r.errors, [], `report ${n}: no errors`)
    main = mainOf(r)
    seen.push(main.vmState)
    t.ok(main.native.length > 0, `report ${n}: the main thread's native stack`)
    await sleep(100)
  }
  t.equal(main.vmState, 'GC', `one report caught it collecting (${seen.join(', ')})`)
  t.match(main.note, /^in garbage collection/)
  t.ok(isAlive(child.pid), 'no out-of-memory crash')
  t.notMatch(child.stderrText, /heap out of memory|guru-meditation/)
})

t.test('workers starting and exiting during captures: every report complete, the process alive', async t => {
  const { child, dir } = service(t, 'churn')
  await waitForOutput(child, /^ready/m)
  const REPORTS = 12
  for (let n = 1; n <= REPORTS; n++) {
    const r = await signalForReport(child, dir, n)
    t.ok(mainOf(r), `report ${n} has the main thread`)
    t.ok(r.threads.length >= 5, `report ${n} lists ${r.threads.length} threads`)
    // A thread that ended between the listing and its signal is said to have.
    for (const th of r.threads.filter(th => th.note.startsWith('native stack not captured'))) {
      // A worker thread blocks all signals while Node starts it.
      t.match(th.note, /the thread exited during the capture|did not answer the capture signal in time|the thread blocks the capture signal/, `thread ${th.tid}: ${th.note}`)
    }
  }
  t.equal(checkReports(dir).length, REPORTS, 'one report per signal')
  t.ok(isAlive(child.pid), 'no crash, no deadlock')
  await until('the churn going on', () => /./.test(child.stdoutText), 1000)
})
