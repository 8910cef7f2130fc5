'use strict'
// User sections on a service whose main thread can answer.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { APP, mainThread, spawnNode, waitForOutput, tmpDir, waitForReports, isAlive, readReport } = require('./helpers')

t.test('a report on an idle service runs the user sections', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json', sectionTimeout: 300 }) }
  })
  await waitForOutput(child, /ready/)
  // Let the main thread finish what printing "ready" started, so it is idle.
  await new Promise(resolve => setTimeout(resolve, 300))
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const report = readReport(file)
  const section = name => report.sections.find(s => s.name === name)
  t.equal(report.package.writtenBy, 'main thread (event loop)')
  t.same(section('Good Section').content, { orders: 3, status: 'fine' })
  t.match(section('Broken Section').error, /section boom/)
  t.match(section('Slow Section').error, /timed out after 300 ms/)
  // The main thread is in its event loop: libuv's static functions are named
  // from node's .symtab.
  const symbols = mainThread(report).native.map(f => f.symbol)
  t.ok(symbols.includes('uv_run'), 'uv_run in the main thread\'s native stack')
  t.ok(symbols.some(s => /^uv__/.test(s)), 'a static libuv function is named')
  // Every thread has its native stack, also Node's inspector thread, which
  // blocks all signals (read while it waits in a system call).
  for (const th of report.threads) {
    if (th.kind === 'guru-meditation') continue
    t.ok(th.native.length > 0, `thread ${th.tid} (${th.kind}) has a native stack: ${th.note}`)
  }
  t.ok(report.threads.some(th => th.native.some(f => /StartIoThreadMain/.test(f.symbol))), "Node's inspector I/O thread is there")
  t.ok(isAlive(child.pid))
})
