'use strict'
// Green Threads: each JavaScript thread's pending async work (libuv handles)
// with its details, read natively, also while the thread is stuck.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, FIXTURES, spawnNode, mainThreadAsleep, until, spawnWithChildren, waitForOutput, waitForReports, tmpDir, lineOf } = require('./helpers')

const APP = path.join(FIXTURES, 'green-threads.js')
const AWAIT_LINE = lineOf(APP, 'async function awaitApproval')
const POLL_LINE = lineOf(APP, 'POLL-INVENTORY')

async function reportOf (t, scene, options = {}, env = {}) {
  const dir = tmpDir(t)
  const watched = path.join(dir, 'watched')
  fs.mkdirSync(watched)
  const reports = path.join(dir, 'reports')
  fs.mkdirSync(reports)
  const child = spawnWithChildren(t, [APP, scene], {
    GMR_TEST_OPTIONS: JSON.stringify({ logDir: reports, format: 'json', ...options }),
    GMR_WATCH_DIR: watched,
    ...env
  })
  const [, port, childPid] = await waitForOutput(child, /ready (\d+) (\d+)/)
  const workerPort = (/worker (\d+)/.exec(child.stdoutText) || [])[1]
  if (scene === 'busy' || scene === 'exec') await new Promise(resolve => setTimeout(resolve, 300))
  // "ready" is said from a callback: the loop may still have events to run
  // (the server's accept); a free main thread is signalled once it sleeps.
  else await until('the main thread asleep in its loop', () => mainThreadAsleep(child.pid), 15000, child)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(reports, 1, 15000, child)
  const content = fs.readFileSync(file, 'utf8') // validated by waitForReports
  const report = options.format === 'text' ? content : JSON.parse(content)
  return { report, child, port: Number(port), childPid: Number(childPid), workerPort: Number(workerPort), watched }
}

function checkMainLoop (t, g, { port, childPid, watched }, pid) {
  const main = g.threads.find(th => th.tid === pid)
  t.ok(main, 'the main thread has its event loop listed')
  t.equal(main.label, 'main thread')
  const find = (type, pred) => main.handles.find(h => h.type === type && pred(h))
  const server = find('tcp', h => h.local === `127.0.0.1:${port}` && !h.remote)
  t.ok(server, 'the listening server, with its address')
  t.match(server.description, `tcp server listening on 127.0.0.1:${port}`)
  t.ok(server.active && server.referenced, 'the server keeps the process alive')
  const client = find('tcp', h => h.remote === `127.0.0.1:${port}`)
  t.ok(client, 'the client socket, with both ends')
  t.match(client.local, /^127\.0\.0\.1:\d+$/)
  t.ok(find('tcp', h => h.local === `127.0.0.1:${port}` && h.remote === client.local), 'the accepted socket, the other way round')
  const proc = find('process', h => h.pid === childPid)
  t.ok(proc, 'the child process, by pid')
  t.match(proc.description, `child process pid ${childPid}: sleep 60`)
  t.ok(find('fs_event', h => h.path === watched), 'the fs watcher, with its path')
  t.ok(find('signal', h => h.signal === 'SIGHUP'), 'the SIGHUP handler')
  return main
}

t.test('a free main thread: servers, sockets, the child, the watcher, the signal handler and the timers', async t => {
  const got = await reportOf(t, 'free')
  const g = got.report.greenThreads
  const main = checkMainLoop(t, g, got, got.child.pid)
  t.equal(main.loop, 'waiting for events')
  const timers = main.handles.find(h => h.type === 'timer' && h.node)
  t.ok(timers, "Node's timer for the JavaScript timers")
  t.ok(timers.dueInMs > 500_000 && timers.dueInMs <= 600_000, `the 10-minute timer is the next (${timers.dueInMs} ms)`)
  t.match(timers.description, /^JavaScript timers: the next due in 9m \d\ds$/)
  t.match(g.summary, /^1 event loop: .*\d+ tcp.*; \d+ keep the process alive; \d+ requests? in flight$/)
  t.ok(main.resources.TCPServerWrap >= 1 && main.resources.TCPSocketWrap >= 2 && main.resources.ProcessWrap === 1,
    `Node's active resources by type, from the main thread (${JSON.stringify(main.resources)})`)
})

t.test('a main thread stuck in a busy loop: the same, read as it stands', async t => {
  const got = await reportOf(t, 'busy')
  t.equal(got.report.package.writtenBy, 'main thread (interrupt: it was busy running JavaScript)')
  const main = checkMainLoop(t, got.report.greenThreads, got, got.child.pid)
  t.match(main.loop, /^(running|has not turned for .*)$/)
  t.ok(main.resources.TCPServerWrap >= 1, 'the interrupt reads Node\'s active resources too')
  t.not(main.loop, 'waiting for events')
})

t.test('a main thread blocked in execFileSync: read by the reporter, the loop named as not turning', async t => {
  const got = await reportOf(t, 'exec')
  t.equal(got.report.package.writtenBy, 'reporter environment (the main thread was blocked)')
  const main = checkMainLoop(t, got.report.greenThreads, got, got.child.pid)
  t.not(main.loop, 'waiting for events', 'execFileSync waits on an epoll of its own, not the loop\'s')
  t.equal(main.resources, null, 'no JavaScript ran on it: no active resources from Node')
})

t.test("a worker's green threads are under the worker", async t => {
  const got = await reportOf(t, 'worker')
  const g = got.report.greenThreads
  t.equal(g.threads.length, 2, 'two event loops')
  const worker = g.threads.find(th => th.tid !== got.child.pid)
  t.match(worker.label, /^worker 1/)
  t.equal(worker.threadId, 1)
  t.ok(worker.handles.find(h => h.type === 'tcp' && h.local === `127.0.0.1:${got.workerPort}`), "the worker's server")
  t.notOk(worker.handles.find(h => h.type === 'tcp' && h.local === `127.0.0.1:${got.port}`), "not the main thread's")
  const main = g.threads.find(th => th.tid === got.child.pid)
  t.notOk(main.handles.find(h => h.type === 'tcp' && h.local === `127.0.0.1:${got.workerPort}`), "the main thread does not list the worker's server")
  t.match(g.summary, /^2 event loops: /)
})

t.test('greenThreadsLimit bounds the handles listed; the rest are counted, in both views', async t => {
  const got = await reportOf(t, 'many', { greenThreadsLimit: 10 })
  const main = got.report.greenThreads.threads.find(th => th.tid === got.child.pid)
  t.equal(main.handles.length, 10)
  t.ok(main.more >= 80, `the others counted (${main.more}: 82 sockets and more)`)
  const { report: text } = await reportOf(t, 'many', { greenThreadsLimit: 10, format: 'text' })
  const section = text.slice(text.indexOf('Green Threads'), text.indexOf('====                             Memory'))
  t.match(section, /------ +main thread \(tid \d+\): waiting for events +------/)
  t.match(section, /\n {2}… and \d+ more\n/)
  t.ok(section.split('\n').filter(l => /^ {2}\S/.test(l)).length <= 13, 'ten handles, the count, the line for Node\'s own')
})

function promisesOf (report, pid) {
  return report.greenThreads.threads.find(th => th.tid === pid).promises
}

t.test('trackPromises: pending promises counted with their age, no sites, settled ones gone, also while stuck', async t => {
  for (const scene of ['free', 'busy']) {
    const got = await reportOf(t, scene, { trackPromises: true }, { GMR_PROMISES: '14' })
    const p = promisesOf(got.report, got.child.pid)
    t.ok(p, `${scene}: promises are tracked`)
    t.equal(p.sites, false, 'no sites recorded')
    t.equal(p.named, false)
    // Each call holds three: the async function's own promise, the one it
    // awaits, and the one V8 makes for the await; the 1000 settled ones are gone.
    t.equal(p.pending, 42)
    t.equal(p.untracked, 0)
    t.equal(p.groups.length, 1, 'one group')
    t.same([p.groups[0].function, p.groups[0].file, p.groups[0].count], ['', '', 42])
    t.ok(p.groups[0].oldestMs >= 0 && p.groups[0].oldestMs < 60_000, `their age (${p.groups[0].oldestMs} ms)`)
    t.match(got.report.greenThreads.summary, /42 pending promises, the oldest /)
  }
  const { report: text } = await reportOf(t, 'free', { trackPromises: true, format: 'text' }, { GMR_PROMISES: '14' })
  t.match(text, /\n42 pending promises, the oldest [^\n]+ \(sites not recorded: trackPromises 'sites' records them\)\n/)
})

t.test("trackPromises 'sites': pending promises by the function that created them, settled ones gone, also while stuck", async t => {
  for (const scene of ['free', 'busy']) {
    const got = await reportOf(t, scene, { trackPromises: 'sites' }, { GMR_PROMISES: '14' })
    const p = promisesOf(got.report, got.child.pid)
    t.ok(p, `${scene}: promises are tracked`)
    t.equal(p.sites, true)
    const approval = p.groups.find(g => g.function === 'awaitApproval')
    t.ok(approval, `${scene}: the never-settling ones are grouped under awaitApproval`)
    t.equal(approval.file, APP)
    t.equal(approval.line, AWAIT_LINE, 'at the line the function starts')
    // Each call holds three: the async function's own promise, the one it
    // awaits, and the one V8 makes for the await.
    t.equal(approval.count, 42)
    t.ok(approval.oldestMs >= 0 && approval.oldestMs < 60_000)
    t.notOk(p.groups.find(g => g.function === 'settles'), `${scene}: the 1000 settled ones are gone`)
    t.equal(p.untracked, 0)
    t.match(got.report.greenThreads.summary, /\d+ pending promises, the oldest /)

    const timers = got.report.greenThreads.threads.find(th => th.tid === got.child.pid).timers
    t.ok(timers, `${scene}: timers are tracked`)
    const poll = timers.timers.find(tm => tm.function === 'pollInventory')
    t.ok(poll, `${scene}: the pending timer, by its callback's name`)
    t.same([poll.file, poll.line, poll.afterMs, poll.repeat], [APP, POLL_LINE, 600_000, false])
    t.ok(poll.dueInMs > 500_000 && poll.dueInMs <= 600_000, `due in about 10 minutes (${poll.dueInMs} ms)`)
    const refresh = timers.timers.find(tm => tm.function === 'refreshCache')
    t.ok(refresh && refresh.repeat && refresh.afterMs === 700_000, `${scene}: the interval`)
    t.notOk(timers.timers.find(tm => tm.function === 'cancelled'), `${scene}: a cleared timer is gone`)
  }
})

t.test("trackPromises: a worker's timers and promises, under the worker (it never loaded the library)", async t => {
  const got = await reportOf(t, 'worker', { trackPromises: true })
  const worker = got.report.greenThreads.threads.find(th => th.tid !== got.child.pid)
  t.ok(worker.promises, "the worker's promises are tracked")
  t.equal(worker.promises.pending, 15, `the 5 calls of workerWaits it made once met (${JSON.stringify(worker.promises)})`)
  t.equal(promisesOf(got.report, got.child.pid).pending, 0, "not among the main thread's")
  t.ok(worker.timers, "the worker's timers are tracked (it never loaded the library)")
  const later = worker.timers.timers.find(tm => tm.function === 'workerLater')
  t.ok(later && later.afterMs === 400_000 && later.dueInMs > 300_000, `the timer it made once met (${JSON.stringify(worker.timers)})`)
  const main = got.report.greenThreads.threads.find(th => th.tid === got.child.pid)
  t.notOk(main.timers.timers.find(tm => tm.function === 'workerLater'), "not among the main thread's")
})

t.test("trackPromises 'sites': a worker's promises by the function that made them, under the worker", async t => {
  const got = await reportOf(t, 'worker', { trackPromises: 'sites' })
  const worker = got.report.greenThreads.threads.find(th => th.tid !== got.child.pid)
  const waits = worker.promises.groups.find(g => g.function === 'workerWaits')
  t.ok(waits, `grouped under workerWaits (${JSON.stringify(worker.promises)})`)
  t.equal(waits.count, 15)
  t.notOk(promisesOf(got.report, got.child.pid).groups.find(g => g.function === 'workerWaits'), "not among the main thread's")
})

t.test('trackPromises switched off: no thread reports promises; on again: only those made since', async t => {
  const off = await reportOf(t, 'worker', { trackPromises: 'sites' }, { GMR_PROMISES: '14', GMR_SWITCH: 'off' })
  for (const th of off.report.greenThreads.threads) {
    t.equal(th.promises, null, `${th.label}: no promises`)
    t.equal(th.timers, null, `${th.label}: no timers`)
  }
  t.notMatch(off.report.greenThreads.summary, /promise/)
  // Each thread forgot its table when it switched off (the worker at an
  // interrupt check, when it ran JavaScript): on again, it starts afresh.
  const got = await reportOf(t, 'worker', { trackPromises: 'sites' }, { GMR_PROMISES: '14', GMR_SWITCH: 'off-on' })
  const main = promisesOf(got.report, got.child.pid)
  t.equal(main.groups.find(g => g.function === 'awaitApproval')?.count, 6, `main: the 2 calls since (${JSON.stringify(main)})`)
  const worker = got.report.greenThreads.threads.find(th => th.tid !== got.child.pid).promises
  t.equal(worker.groups.find(g => g.function === 'workerWaits')?.count, 6, `worker: the 2 calls since (${JSON.stringify(worker)})`)
})

t.test("trackPromises 'sites' with the code map off: counted, the sites unnamed, and the text says why", async t => {
  const got = await reportOf(t, 'free', { trackPromises: 'sites', codeMap: false, format: 'text' }, { GMR_PROMISES: '14' })
  t.match(got.report, /\n\d+ pending promises \(their sites are not named: the code map is off\)\n/)
})

t.test('trackPromises off (the default): no promise is tracked', async t => {
  const got = await reportOf(t, 'free', {}, { GMR_PROMISES: '14' })
  t.equal(promisesOf(got.report, got.child.pid), null)
  t.equal(got.report.greenThreads.threads.find(th => th.tid === got.child.pid).timers, null)
  t.notMatch(got.report.greenThreads.summary, /promise/)
})

t.test('a hundred thousand pending promises: the tracker is capped, the rest counted, groups bounded in text', async t => {
  const got = await reportOf(t, 'free', { trackPromises: 'sites', format: 'text' }, { GMR_PROMISES: '100000' })
  const section = got.report.slice(got.report.indexOf('Green Threads'), got.report.indexOf('====                             Memory'))
  const m = /(\d+) pending promises \(and (\d+) past the tracker's capacity\)/.exec(section)
  t.ok(m, 'the count past the capacity is given')
  t.ok(Number(m[1]) <= 65536, `at most 65536 tracked (${m[1]})`)
  t.ok(Number(m[1]) + Number(m[2]) >= 300_000, `all 300000 pending counted (${Number(m[1]) + Number(m[2])})`)
  t.match(section, /\n {2}\d+ × awaitApproval \(green-threads\.js:\d+\), oldest /)
})

// The tracker's mark on a promise is a private field: the application sees
// its promises as without tracking (inspect, symbols, spread, deep equality),
// and a Proxy in a promise's prototype chain is never asked.
t.test('trackPromises leaves no trace the application can see on its promises', async t => {
  const lib = JSON.stringify(ROOT)
  for (const mode of ['true', "'sites'"]) {
    const child = spawnNode(t, ['-e', `
      const util = require('node:util'); const assert = require('node:assert')
      // How this Node compares two pending promises without tracking (Node 24: unequal).
      let baseline = true
      try { assert.deepStrictEqual({ a: new Promise(() => {}) }, { a: new Promise(() => {}) }) } catch { baseline = false }
      require(${lib}).setupAutorun('1', { trackPromises: ${mode}, signal: 'none' })
      const pending = new Promise(() => {})
      let trapped = 0
      class Trapped extends Promise {}
      Object.setPrototypeOf(Trapped.prototype, new Proxy(Promise.prototype, { set () { trapped++; return false }, defineProperty () { trapped++; return false } }))
      new Trapped(() => {})
      let equal = true
      try { assert.deepStrictEqual({ a: new Promise(() => {}) }, { a: new Promise(() => {}) }) } catch { equal = false }
      equal = equal === baseline
      console.log(JSON.stringify({ inspect: util.inspect(pending), symbols: Object.getOwnPropertySymbols(pending).length, spread: Object.keys({ ...pending }).length, equal, trapped }))
    `])
    const { code } = await child.exited
    t.equal(code, 0, child.stderrText)
    t.same(JSON.parse(child.stdoutText), { inspect: 'Promise { <pending> }', symbols: 0, spread: 0, equal: true, trapped: 0 }, `trackPromises: ${mode}`)
  }
})
