'use strict'
// Reports of a main thread busy in JavaScript, written from a V8 interrupt
// between two of its operations: never lost, and the application never
// disturbed (its vm sandboxes, its require, its Atomics.wait, its output).
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { testHooks, ROOT, FIXTURES, mainThread, mainThreadSpun, spawnNode, waitForOutput, tmpDir, waitForReports, lineOf, isAlive } = require('./helpers')

const FIXTURE = path.join(FIXTURES, 'interrupt.js')
const BY_INTERRUPT = 'main thread (interrupt: it was busy running JavaScript)'

function readReport (file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

/** The frames include the sandbox's loop (line 6 of its code: VM-SPIN in the fixture). */
function inSandboxLoop (frames) {
  return frames.some(f => f.file === 'evalmachine.<anonymous>' && f.line === 6)
}

/** What the application printed at the end ('done {…}'). */
async function appSummary (child) {
  const [, json] = await waitForOutput(child, /done (\{.*\})\n/)
  return JSON.parse(json)
}

t.test('an interrupt that lands with no stack left: a reporter environment writes the report, saying why', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [FIXTURE, 'deep', dir])
  await waitForOutput(child, /deep/)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const report = readReport(file)
  t.equal(report.package.writtenBy, 'reporter environment (the main thread could not write it)')
  t.match(report.errors.join('\n'), /the main thread took the report but could not write it: its JavaScript could not run there: Maximum call stack size exceeded/)
  t.same(report.package.trigger, { kind: 'signal', detail: 'SIGUSR2', coalesced: 0 })
  const main = mainThread(report)
  t.equal(main.javascript[0].function, 'dive')
  t.equal(main.javascript[0].line, lineOf(FIXTURE, 'DEEP-SPIN'), 'the stack of the thread at its limit')
  t.match(report.sections.find(s => s.name === 'Live Section').error, /could not write it/)
  t.notMatch(child.stderrText, /lost|could not be written/)
  t.ok(isAlive(child.pid), 'the service runs on')
})

t.test('the report fails twice on the main thread (the application broke a built-in): a reporter environment writes it', async t => {
  for (const mode of ['spin', 'idle']) {
    await t.test(mode === 'spin' ? 'busy: from the interrupt' : 'idle: from the event loop', async t => {
      const dir = tmpDir(t)
      const child = spawnNode(t, [FIXTURE, 'broken-date', dir, mode])
      await waitForOutput(child, /ready/)
      if (mode === 'spin') await mainThreadSpun(child)
      process.kill(child.pid, 'SIGUSR2')
      const [file] = await waitForReports(dir, 1, 15000, child)
      const report = readReport(file)
      t.equal(report.package.writtenBy, 'reporter environment (the main thread could not write it)')
      t.match(report.errors.join('\n'), /could not write it: its report failed twice \(Error: the application broke Date; then Error: the application broke Date\)/)
      if (mode === 'spin') t.equal(mainThread(report).javascript[0].line, lineOf(FIXTURE, 'PLAIN-SPIN'))
      t.equal(child.stderrText, '', 'nothing on stderr')
      t.ok(isAlive(child.pid))
    })
  }
})

const TEST_HOOKS = testHooks()

t.test('a failure injected into the report from the interrupt is written into it', {
  skip: TEST_HOOKS ? false : 'needs a build with test hooks (scripts/sanitize.sh test/interrupt.test.js)'
}, async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [FIXTURE, 'spin', dir], { env: { GMR_TEST_HOOKS: 'interrupt_report_throws' } })
  await waitForOutput(child, /ready/)
  await mainThreadSpun(child)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const report = readReport(file)
  t.equal(report.package.writtenBy, BY_INTERRUPT, 'still by the main thread')
  t.same(report.errors, ['report: the report failed on the main thread (Error: injected by the test hook interrupt_report_throws); written again without its live parts'])
  t.match(report.sections.find(s => s.name === 'Live Section').error, /the report failed on the main thread/)
  t.equal(mainThread(report).javascript[0].line, lineOf(FIXTURE, 'PLAIN-SPIN'), 'the capture is whole')
  t.ok(isAlive(child.pid))
})

t.test('the main thread busy inside a vm context: the report from the interrupt is whole, the sandbox untouched', async t => {
  const dir = tmpDir(t)
  const stop = path.join(tmpDir(t), 'stop')
  const child = spawnNode(t, [FIXTURE, 'vm-main', dir, stop])
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const report = readReport(file)
  t.equal(report.package.writtenBy, BY_INTERRUPT)
  // The sandbox's realm replaced its Array.prototype.map: the capture's
  // objects are made in the main context, so the report does not use it.
  t.same(report.errors, [], 'no section failed')
  // The loop, or the check for the stop file it makes now and then.
  t.ok(inSandboxLoop(mainThread(report).javascript), 'the sandbox loop (VM-SPIN in the fixture) is on the stack')
  t.ok(report.greenThreads.threads.length >= 1, 'green threads are there')
  t.same(report.sections.find(s => s.name === 'Live Section').content, { live: true })
  fs.writeFileSync(stop, '')
  t.same(await appSummary(child), {
    result: 'finished',
    keys: ['clearTimeout', 'process', 'setTimeout', 'started', 'stopped'],
    processReads: 0,
    setTimeoutCalls: 0
  }, 'the sandbox has its own keys only, and none of its accessors ran')
  t.equal(child.stderrText, '', 'nothing on stderr')
})

t.test('a worker that never loaded the library, busy inside a vm context: met by its threadId, the sandbox untouched', async t => {
  const dir = tmpDir(t)
  const stop = path.join(tmpDir(t), 'stop')
  const child = spawnNode(t, [FIXTURE, 'vm-worker', dir, stop])
  // The worker started before set-up, and spins in its vm context: it is
  // met by the report's own capture.
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const report = readReport(file)
  const worker = report.threads.find(th => th.kind === 'worker')
  t.ok(worker, 'the worker is listed')
  t.equal(worker.threadId, 1, 'with its threadId, read in its own context')
  t.ok(inSandboxLoop(worker.javascript), 'busy in the sandbox')
  fs.writeFileSync(stop, '')
  t.same(await appSummary(child), {
    result: 'finished',
    keys: ['clearTimeout', 'process', 'setTimeout', 'started', 'stopped'],
    processReads: 0,
    setTimeoutCalls: 0
  }, 'neither the identity script nor the timer installer looked into the sandbox')
  t.equal(child.stderrText, '', 'nothing on stderr')
})

/** A tree of `count` small modules that each compute a little; index.js sums them. */
function moduleTree (t, count) {
  const dir = tmpDir(t)
  // It says when it runs: its 2,000 requires are still to come.
  let index = "require('node:fs').writeSync(1, 'inside the tree\\n')\nlet sum = 0\n"
  let sum = 0
  for (let i = 0; i < count; i++) {
    fs.writeFileSync(path.join(dir, `m${i}.js`), `let x = 0\nfor (let i = 0; i < 5000; i++) x += (i * ${i}) % 7\nmodule.exports = x\n`)
    let x = 0
    for (let j = 0; j < 5000; j++) x += (j * i) % 7
    sum += x
    index += `sum += require('./m${i}.js')\n`
  }
  fs.writeFileSync(path.join(dir, 'index.js'), `${index}module.exports = { count: ${count}, sum }\n`)
  return { dir, sum }
}

t.test('a report during require of 2,000 modules: whole, and the require goes on undisturbed', async t => {
  const tree = moduleTree(t, 2000)
  for (const when of ['now', 'later']) {
    await t.test(`required ${when === 'now' ? 'right after setup' : 'once the event loop turned'}`, async t => {
      const dir = tmpDir(t)
      const child = spawnNode(t, [FIXTURE, 'tree', dir, tree.dir, when])
      await waitForOutput(child, /inside the tree/)
      process.kill(child.pid, 'SIGUSR2')
      const [file] = await waitForReports(dir, 1, 15000, child)
      const report = readReport(file)
      if (when === 'now') {
        // Before the first turn the report modules are not loaded: loading
        // them inside the application's require is not done.
        t.equal(report.package.writtenBy, 'reporter environment (the main thread could not write it)')
        t.match(report.errors.join('\n'), /report modules were not loaded yet/)
      } else {
        t.equal(report.package.writtenBy, BY_INTERRUPT)
        t.same(report.errors, [])
      }
      const frames = mainThread(report).javascript
      t.ok(frames.some(f => f.file.startsWith(tree.dir)), 'the main thread is inside the tree')
      // Node's own require (Module._load is nameless on Node 22 and later).
      t.ok(frames.some(f => f.function === 'require' && /^node:internal\/modules\//.test(f.file)), 'inside require')
      const summary = await appSummary(child)
      t.same(summary, { modules: 2000, sum: tree.sum, foreign: [] }, 'every module loaded, and the loader hook saw nothing of the library')
      t.ok(isAlive(child.pid))
    })
  }
})

t.test("an interrupt while the library's own module is half loaded: the report comes from a reporter environment", async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [FIXTURE, 'hooked', dir])
  // The loader hook spins while the report modules load for generateReport.
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const report = readReport(file)
  t.equal(report.package.writtenBy, 'reporter environment (the main thread could not write it)')
  t.match(report.errors.join('\n'), /report modules were not loaded yet/)
  t.ok(mainThread(report).javascript.some(f => f.file === FIXTURE && f.line === lineOf(FIXTURE, 'HOOK-SPIN')), 'in the hook')
  t.same(await appSummary(child), { api: 'api' }, 'the API report it was loading for comes too')
  t.notMatch(child.stderrText, /report failed/)
})

t.test('stderr a full non-blocking pipe while the main thread is in Atomics.wait: the report waits for the reader', async t => {
  const stop = path.join(tmpDir(t), 'stop')
  const child = spawnNode(t, [FIXTURE, 'wait', '-', stop])
  // Not read until the report is being written: the pipe stays full.
  child.stderr.pause()
  const [, filled] = await waitForOutput(child, /filled (\d+)\n/)
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  // The report meets a full pipe for most of this (less than the 2 s the
  // writer waits without progress). Before, each retry nested an
  // Atomics.wait in the application's: the process could abort.
  await new Promise(resolve => setTimeout(resolve, 1500))
  child.stderr.resume()
  const start = await waitForOutput(child, /\{\n {2}"schema"/, 'stderrText')
  await waitForOutput(child, /\n\}\n/, 'stderrText')
  const at = start.index
  const end = child.stderrText.indexOf('\n}\n', at) + 3
  const report = JSON.parse(child.stderrText.slice(at, end))
  t.equal(report.package.writtenBy, BY_INTERRUPT, 'written from the interrupt in Atomics.wait')
  fs.writeFileSync(stop, '')
  t.same(await appSummary(child), { result: 'ok', value: 7 }, 'the wait ends as the application meant it to')
  await waitForOutput(child, /f\n$/, 'stderrText')
  // Its bytes all there and in order; the report lands between two of
  // its chunks (the rest was in libuv's queue, which only its loop sends).
  t.equal(child.stderrText.slice(0, at) + child.stderrText.slice(end), 'f'.repeat(Number(filled)) + '\n', "the application's own output whole")
  t.ok(isAlive(child.pid))
})

t.test('a Node without process.getBuiltinModule (before 20.16): require fails with one clear message', async t => {
  const child = spawnNode(t, ['-e', `delete process.getBuiltinModule; require(${JSON.stringify(ROOT)})`])
  const { code } = await child.exited
  t.equal(code, 1)
  t.match(child.stderrText, /guru-meditation: needs Node\.js 20\.16 or later: it uses process\.getBuiltinModule, which this Node \(v[\d.]+\) does not have/)
})
