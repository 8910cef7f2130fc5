'use strict'
// Two threads deadlocked on two mutexes in native code, the main thread one
// of them: the report names, for each, the mutex it waits for and the thread
// that holds it, and says that they wait for each other.
const t = require('tap')
const { execFile, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { FIXTURES, spawnNode, waitForOutput, tmpDir, waitForReports, isAlive, readReport } = require('./helpers')

const CLI = path.join(__dirname, '..', 'dist', 'cli.js')

t.test('a deadlock between the main thread and a worker, in native code', async t => {
  const build = tmpDir(t)
  const addon = path.join(build, 'deadlock.node')
  const cc = spawnSync('cc', ['-O1', '-shared', '-fPIC', '-o', addon, path.join(FIXTURES, 'deadlock.c')], { encoding: 'utf8' })
  if (cc.status !== 0) throw new Error(`cannot build the deadlock addon: ${cc.stderr}`)

  const dir = tmpDir(t)
  const child = spawnNode(t, [path.join(FIXTURES, 'deadlock.js'), addon], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) }
  })
  await waitForOutput(child, /^ready/m)
  // Both take their first mutex at once, then block on the other's; on a
  // loaded machine a report may still come before: ask again.
  let report
  for (let n = 1; n <= 10; n++) {
    await new Promise(resolve => setTimeout(resolve, 300))
    child.kill('SIGUSR2')
    const files = await waitForReports(dir, n, 15000, child)
    report = readReport(files[n - 1])
    if (report.threads.filter(th => th.waitingForLock).length >= 2) break
  }

  const main = report.threads.find(th => th.kind === 'main')
  const worker = report.threads.find(th => th.kind === 'worker')
  t.ok(main && worker, 'the main thread and the worker are listed')
  t.ok(main.waitingForLock, 'the main thread waits for a mutex')
  t.ok(worker.waitingForLock, 'so does the worker')
  t.equal(main.waitingForLock.heldBy, worker.tid, 'held by the worker')
  t.equal(worker.waitingForLock.heldBy, main.tid, 'and the worker\'s by the main thread')
  t.not(main.waitingForLock.address, worker.waitingForLock.address, 'two mutexes')
  t.match(main.note, new RegExp(`waiting for the mutex at ${main.waitingForLock.address}, held by #${worker.tid} \\(worker.*\\): a deadlock, #${main.tid} \\(main\\) waits for #${worker.tid} \\(worker.*\\) waits for #${main.tid} \\(main\\)`), `the main thread's note (${main.note})`)
  t.match(worker.note, /: a deadlock, /, `the worker's note (${worker.note})`)
  t.match(main.note, /blocked in a native call from takeLocks/, 'and where it blocked, in JavaScript')
  const others = report.threads.filter(th => th.waitingForLock && th !== main && th !== worker)
  t.same(others.map(th => th.tid), [], 'no other thread is said to wait for a mutex')
  t.equal(report.package.writtenBy, 'reporter environment (the main thread was blocked)')
  const [low, high] = [main, worker].sort((a, b) => a.tid - b.tid)
  t.same(report.deadlocks, [[low.tid, high.tid]], 'the report lists the deadlock once, from the lowest tid')

  // The text view, as `gmr <pid>` prints it: the deadlock on top of Threads.
  const text = await new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, String(child.pid)], { timeout: 20000, killSignal: 'SIGKILL', maxBuffer: 64 << 20 },
      (err, stdout) => err ? reject(err) : resolve(stdout))
  })
  const label = th => `#${th.tid} \\(${th.kind}[^)]*\\)`
  t.match(text, new RegExp(`={4} +Threads +={4}\\n={72}\\n\\d+ threads, capture took [^\\n]*\\nDEADLOCK: ${label(low)} waits for ${label(high)} waits for ${label(low)}\\n`), 'the text view says DEADLOCK first, once')
  t.equal(text.match(/^DEADLOCK:/gm).length, 1, 'one deadlock')
  t.ok(isAlive(child.pid), 'the process is left as it was')
})
