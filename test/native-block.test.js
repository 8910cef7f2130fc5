'use strict'
// Threads that cannot answer an interrupt (blocked in native code) are named
// from the code map: V8's stack sample, resolved against the code events.
// Real processes, real signals.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { FIXTURES, spawnWithChildren, waitForOutput, tmpDir, waitForReports, lineOf, isAlive, until, readReport, waitForTextReport, sleep } = require('./helpers')

const APP = path.join(FIXTURES, 'native-block.js')
const WORKER = path.join(FIXTURES, 'native-block-worker.js')
const TOOL_LINE = lineOf(APP, 'TOOL-LINE')
const READ_LINE = lineOf(WORKER, 'READ-LINE')
const HOT_LINE = lineOf(APP, 'HOT-LINE')

const readJson = file => readReport(file)

const spawnService = (t, args, env) => spawnWithChildren(t, [APP, ...args], env)

function thread (report, kind) {
  return report.threads.find(th => th.kind === kind)
}

t.test('a main thread blocked in execSync is named from the code map', async t => {
  const dir = tmpDir(t)
  const child = spawnService(t, ['exec'], { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) })
  await waitForOutput(child, /blocking/)
  await sleep(300) // inside execSync by now
  child.kill('SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const report = readJson(file)
  t.equal(report.package.writtenBy, 'reporter environment (the main thread was blocked)')
  // Asleep in wait4, not in its loop: not waited for the full pickup time.
  t.same(report.errors, ['configuration: as of setup; the main thread is blocked in a system call outside its event loop (given 10 ms, it did not pick up the report)'])
  const main = thread(report, 'main')
  t.equal(main.vmState, 'EXTERNAL')
  t.equal(main.javascriptSource, 'code-map', 'the JS stack comes from the code map')
  const frame = main.javascript.find(f => f.function === 'waitForExternalTool')
  t.ok(frame, 'waitForExternalTool is in the JS stack')
  t.equal(frame.file, APP)
  t.equal(frame.line, TOOL_LINE, "the function's start line")
  t.ok(main.javascript.some(f => f.function === 'execSync' && f.file === 'node:child_process'), "Node's own frames too")
  t.equal(main.note, `blocked in a native call from waitForExternalTool (native-block.js:${TOOL_LINE})`)
  const named = main.native.filter(f => f.javascript)
  t.ok(named.some(f => f.javascript.function === 'waitForExternalTool'), 'its interpreter frame is named in the native stack')
  // Only frames running JavaScript are named: JIT code (no symbol) and V8's
  // builtins (the interpreter); Node's and libuv's C++ frames under them are not.
  t.same(named.filter(f => f.symbol !== '' && !f.symbol.startsWith('Builtins_')).map(f => f.location), [], 'no C++ frame is named as JavaScript')
  const cxx = main.native.filter(f => /^(uv_run|node::)/.test(f.symbol))
  t.ok(cxx.length > 0, "Node's and libuv's frames are in the stack")
  t.same(cxx.filter(f => f.javascript !== null).map(f => f.location), [], 'and have javascript: null')
  t.ok(isAlive(child.pid), 'the service keeps running')
})

t.test('the text view labels a code-map stack and names interpreter frames', async t => {
  const child = spawnService(t, ['exec'], { GMR_TEST_OPTIONS: JSON.stringify({ format: 'text' }) })
  await waitForOutput(child, /blocking/)
  await sleep(300)
  child.kill('SIGUSR2')
  const text = await waitForTextReport(child)
  t.match(text, `note = blocked in a native call from waitForExternalTool (native-block.js:${TOOL_LINE})`)
  t.match(text, 'JavaScript stack (from the code map: function start lines):')
  t.match(text, `  at waitForExternalTool (${APP}:${TOOL_LINE}:`)
  // Node 20 runs V8's builtins from its binary; 22 and later from a copy
  // outside it, named from the code map.
  const module = Number(process.versions.node.split('.')[0]) >= 22 ? '' : '  \\(node\\)'
  t.match(text, new RegExp(`Builtins_Interpreter\\w+\\+0x[0-9a-f]+${module}  JS: waitForExternalTool \\(native-block\\.js:${TOOL_LINE}\\)`))
})

t.test('a worker that never loaded the library, blocked reading a pipe, is named', async t => {
  const dir = tmpDir(t)
  const go = path.join(dir, 'go')
  const fifo = path.join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const child = spawnService(t, ['worker-read'], {
    GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }),
    GMR_TEST_GO: go,
    GMR_TEST_FIFO: fifo
  })
  const workerTid = Number((await waitForOutput(child, /worker ready (\d+)/))[1])
  await waitForOutput(child, /^ready \d+/m)
  // The first report reaches the worker (it answers its interrupt, and gets
  // its code map then); the second finds it blocked.
  child.kill('SIGUSR2')
  await waitForReports(dir, 1, 15000, child)
  fs.writeFileSync(go, '')
  await waitForOutput(child, /worker blocking/)
  await sleep(300)
  child.kill('SIGUSR2')
  const files = await waitForReports(dir, 2, 15000, child)
  const worker = readJson(files[1]).threads.find(th => th.tid === workerTid)
  t.ok(worker, 'the worker is listed')
  t.equal(worker.kind, 'worker')
  t.equal(worker.vmState, 'EXTERNAL')
  t.equal(worker.javascriptSource, 'code-map')
  const frame = worker.javascript.find(f => f.function === 'readToolInput')
  t.ok(frame, 'readToolInput is in its JS stack')
  t.equal(frame.file, WORKER)
  t.equal(frame.line, READ_LINE)
  t.ok(worker.javascript.some(f => f.function === 'readSync'), 'under fs.readSync')
  t.equal(worker.note, `blocked in a native call from readToolInput (native-block-worker.js:${READ_LINE})`)
})

t.test('a busy main thread has its JIT frames named in the native stack', async t => {
  const dir = tmpDir(t)
  const child = spawnService(t, ['hot'], { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) })
  await waitForOutput(child, /spinning/)
  await sleep(1500) // long enough for the loop to be optimized (OSR)
  child.kill('SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const main = thread(readJson(file), 'main')
  t.equal(main.javascriptSource, 'interrupt', 'a busy thread still answers its interrupt')
  t.equal(main.javascript[0].function, 'spinHot')
  const jit = main.native.find(f => f.javascript && f.javascript.function === 'spinHot')
  t.ok(jit, 'a native frame runs spinHot')
  t.equal(jit.symbol, '', 'in JIT code, which has no symbol')
  t.equal(jit.location, '??')
  t.equal(jit.javascript.file, APP)
  t.ok(jit.javascript.line > 0 && jit.javascript.line < HOT_LINE, "spinHot's start line")
})

t.test('with the code map switched off, a blocked thread is not named', async t => {
  const dir = tmpDir(t)
  const child = spawnService(t, ['exec'], {
    GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }),
    GMR_CODE_MAP: '0'
  })
  await waitForOutput(child, /blocking/)
  await sleep(300)
  child.kill('SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const main = thread(readJson(file), 'main')
  t.equal(main.javascriptSource, null)
  t.same(main.javascript, [])
  t.match(main.note, /did not answer the request for its JavaScript stack in time/)
  t.ok(main.native.every(f => f.javascript === null))
})

t.test('workers with a code map exit cleanly, and so does the process', async t => {
  const dir = tmpDir(t)
  const go = path.join(dir, 'go')
  const exit = path.join(dir, 'exit')
  const child = spawnService(t, ['worker-exit'], {
    GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }),
    GMR_TEST_GO: go,
    GMR_TEST_EXIT: exit
  })
  const workerTid = Number((await waitForOutput(child, /worker ready (\d+)/))[1])
  await waitForOutput(child, /^ready \d+/m)
  child.kill('SIGUSR2')
  const [first] = await waitForReports(dir, 1, 15000, child)
  t.ok(readJson(first).threads.some(th => th.tid === workerTid), 'the worker is listed')
  fs.writeFileSync(go, '')
  await waitForOutput(child, /worker exited 0/)
  child.kill('SIGUSR2')
  const files = await waitForReports(dir, 2, 15000, child)
  t.notOk(readJson(files[1]).threads.some(th => th.tid === workerTid), 'the worker is gone')
  fs.writeFileSync(exit, '')
  const { code, signal } = await child.exited
  t.equal(signal, null, 'no crash')
  t.equal(code, 0)
})
