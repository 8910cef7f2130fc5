'use strict'
// reportOnFatalSignal: real crashes in real processes (a null write, a stack
// overflow and a division by zero in a test-only addon built here, and
// process.abort()), each checked against the same crash without the
// library: the report is written, and the parent sees the same signal.
const t = require('tap')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { testHooks, FIXTURES, spawnNode, tmpDir, reportFiles, waitForOutput } = require('./helpers')
const { validateFatalReport } = require('./helpers/validate')

const FIXTURE = path.join(FIXTURES, 'fatal.js')
const CRASH_TIMEOUT_MS = 30000

let crasher
t.before(() => {
  const dir = tmpDir(t)
  crasher = path.join(dir, 'crasher.node')
  const build = spawnSync('cc', ['-O1', '-shared', '-fPIC', '-o', crasher, path.join(FIXTURES, 'crasher.c')], { encoding: 'utf8' })
  if (build.status !== 0) throw new Error(`cannot build the crasher: ${build.stderr}`)
})

async function crash (t, how, env) {
  const child = spawnNode(t, [FIXTURE, how, crasher], { env })
  const timer = setTimeout(() => child.kill('SIGKILL'), CRASH_TIMEOUT_MS)
  const exit = await child.exited
  clearTimeout(timer)
  return { exit, child }
}

/** The crash without the library, then with it (report to logDir, or stderr): both exits and the report. */
async function compare (t, how, { toStderr = false, extraEnv = {} } = {}) {
  const without = await crash(t, how, { GMR_FIXTURE_NO_LIBRARY: '1' })
  const dir = tmpDir(t)
  const env = { GMR_REPORT_ON_FATAL_SIGNAL: '1', ...(toStderr ? {} : { GMR_LOG_DIR: dir }), ...extraEnv }
  const withLib = await crash(t, how, env)
  t.not(without.exit.signal, null, `without the library the process dies of a signal (${without.exit.signal})`)
  t.same(withLib.exit, without.exit, 'the parent sees the same end with the library')
  let report
  if (toStderr) {
    report = withLib.child.stderrText
  } else {
    const files = reportFiles(dir)
    t.equal(files.length, 1, 'one report file')
    const file = path.join(dir, files[0])
    t.equal(fs.statSync(file).mode & 0o777, 0o600, 'mode 0600')
    report = fs.readFileSync(file, 'utf8')
  }
  validateFatalReport(report, `the ${how} report`)
  return { report, pid: withLib.child.pid, without }
}

/** The crashed thread's section: its heading to the next heading. */
function crashedSection (report) {
  const m = report.match(/-{6} +Thread #(\d+) (\S*) \((\w+), crashed\) +-{6}\n([\s\S]*?)(?=\n-{6} |\s*$)/)
  return m && { tid: Number(m[1]), name: m[2], kind: m[3], body: m[4] }
}

function checkHeader (t, report, signal, pid, kind) {
  t.match(report, /={4} +Guru Meditation: fatal signal +={4}/, 'the fatal-signal heading')
  t.match(report, new RegExp(`^signal = ${signal} \\(\\d+\\)$`, 'm'), `signal = ${signal}`)
  t.match(report, /^si_code = -?\d+/m, 'si_code')
  t.match(report, new RegExp(`^crashed thread = #\\d+ \\S* \\(${kind}\\)$`, 'm'), `the crashed thread is the ${kind} thread`)
  t.match(report, new RegExp(`^pid = ${pid}$`, 'm'), 'the pid')
  t.match(report, /={4} +Threads +={4}\n={72}\n(\d+) threads/, 'a Threads section')
  const count = Number(report.match(/\n(\d+) threads \(native stacks only/)[1])
  t.ok(count >= 5, `every thread is listed (${count})`)
  t.equal(report.match(/^-{6} +Thread #/gm).length, count, 'a section per thread')
  const symbolized = report.match(/Native stack:\n {2}#0 +0x[0-9a-f]{16} {2}[^?\s]\S*/g) || []
  t.ok(symbolized.length >= 3, `the other threads' native stacks too, symbolized (${symbolized.length} threads)`)
  // Memory: the process's figures from /proc, each JavaScript thread's heap as last recorded.
  const memory = /={4} +Memory +={4}\n={72}\n([\s\S]*)$/.exec(report)
  t.ok(memory, 'a Memory section, last')
  const rss = /^rss = (\d+) kB \(peak (\d+) kB\), anonymous \d+ kB, file-backed \d+ kB, swap \d+ kB$/m.exec(memory[1])
  t.ok(rss && Number(rss[1]) > 10000 && Number(rss[2]) >= Number(rss[1]), 'rss and its peak', { memory: memory[1] })
  t.match(memory[1], /^file descriptors = \d+ \(limit \d+\)$/m)
  t.match(memory[1], new RegExp(`^#${pid} \\(main\\): heap used \\d+ kB of \\d+ kB \\(limit \\d+ kB\\), external \\d+ kB; \\d+ collections; as of \\d+ ms before the crash \\((its last collection|when it was met, or last answered a report)\\)$`, 'm'), "the main thread's heap")
}

t.test('a null write on the main thread: SIGSEGV, the report in logDir', async t => {
  const { report, pid } = await compare(t, 'segv')
  checkHeader(t, report, 'SIGSEGV', pid, 'main')
  t.match(report, /^si_code = 1 \(SEGV_MAPERR/m, 'a fault, not a sent signal')
  t.match(report, /^fault address = 0x0{16}$/m, 'at address 0')
  const crashed = crashedSection(report)
  t.equal(crashed.tid, pid, 'the main thread crashed')
  t.match(crashed.body, /#0 +0x[0-9a-f]{16} {2}crasher_null_write\+0x[0-9a-f]+ {2}\(crasher\.node\)/, 'frame #0 is the faulting function, symbolized')
  t.match(crashed.body, /#1 +0x[0-9a-f]{16} {2}segv\+0x[0-9a-f]+ {2}\(crasher\.node\)/, 'its caller')
  t.match(crashed.body, /uv_run\+0x[0-9a-f]+ {2}\(node\)/, 'down to the event loop')
  t.match(crashed.body, /node::Start\(int, char\*\*\)/, 'and node::Start')
})

t.test('process.abort(): SIGABRT, the report on stderr', async t => {
  const { report, pid } = await compare(t, 'abort', { toStderr: true })
  checkHeader(t, report, 'SIGABRT', pid, 'main')
  t.match(report, /^si_code = -6 \(SI_TKILL/m, 'sent by the thread itself')
  t.notMatch(report, /^fault address/m, 'no fault address for a sent signal')
  const crashed = crashedSection(report)
  t.match(crashed.body, /abort\+0x[0-9a-f]+ {2}\(libc\.so\.6\)/, 'libc abort')
  t.match(crashed.body, /node::Abort\(/, 'called by node::Abort')
})

t.test('a stack overflow on the main thread: reported from the alternate stack', async t => {
  const { report, pid } = await compare(t, 'overflow')
  checkHeader(t, report, 'SIGSEGV', pid, 'main')
  const crashed = crashedSection(report)
  t.ok((crashed.body.match(/crasher_recurse\+0x[0-9a-f]+ {2}\(crasher\.node\)/g) || []).length > 20, 'the recursion, unwound from above the guard page')
})

t.test('an integer division by zero: SIGFPE', async t => {
  const { report, pid } = await compare(t, 'fpe')
  checkHeader(t, report, 'SIGFPE', pid, 'main')
  t.match(report, /^si_code = 1 \(FPE_INTDIV/m, 'FPE_INTDIV')
  t.match(crashedSection(report).body, /#0 +0x[0-9a-f]{16} {2}crasher_divide\+/, 'the dividing function')
})

t.test('a worker thread crashes: its stack, and the main thread listed', async t => {
  const { report, pid } = await compare(t, 'worker-segv')
  checkHeader(t, report, 'SIGSEGV', pid, 'worker')
  const crashed = crashedSection(report)
  t.not(crashed.tid, pid, 'not the main thread')
  t.equal(crashed.kind, 'worker', 'a worker')
  t.match(crashed.body, /#0 +0x[0-9a-f]{16} {2}crasher_null_write\+/, 'its faulting frame')
  t.match(report, new RegExp(`-{6} +Thread #${pid} \\S+ \\(main\\) +-{6}\\nstate = \\w+[^]*?Native stack:\\n {2}#0 `), 'the main thread with its stack')
})

t.test('a native stack overflow in a worker: reported from the alternate stack the worker was given', async t => {
  const { report, pid } = await compare(t, 'worker-overflow')
  checkHeader(t, report, 'SIGSEGV', pid, 'worker')
  const crashed = crashedSection(report)
  t.not(crashed.tid, pid, 'not the main thread')
  t.equal(crashed.kind, 'worker', 'a worker')
  t.ok((crashed.body.match(/crasher_recurse\+0x[0-9a-f]+ {2}\(crasher\.node\)/g) || []).length > 20, 'the recursion, unwound from above the guard page')
})

t.test('a crash with the loader lock held: the helper cannot finish, the crashing thread writes its own frames after 2 s', async t => {
  const start = Date.now()
  const { report, pid } = await compare(t, 'segv-locked')
  t.match(report, /^signal = SIGSEGV \(11\)$/m, 'the header, written by the crashing thread')
  t.match(report, new RegExp(`^pid = ${pid}$`, 'm'))
  t.match(report, /The helper thread did not finish the report within 2000 ms/, 'the fallback says why')
  t.match(report, /Native stack \(the crashing thread's own: its pc and frame-pointer chain, unsymbolized\):\n {2}#0 +0x[0-9a-f]{16} {2}crasher\.node\+0x[0-9a-f]+/, 'frame #0 in the crasher, as module and offset')
  t.notMatch(report, /={4} +Threads +={4}/, 'no Threads section from the stuck helper')
  t.ok(Date.now() - start >= 2000, 'after the helper had its 2 s')
})

t.test('the helper faults while it writes: the crashing thread writes its own frames, and the process ends by its own signal', {
  skip: testHooks() ? false : 'needs a build with test hooks (scripts/sanitize.sh runs it)'
}, async t => {
  // The crash is SIGABRT, the helper's fault (test hook) a SIGSEGV: the
  // parent must see SIGABRT, as without the library.
  const { report, pid, without } = await compare(t, 'abort', { extraEnv: { GMR_TEST_HOOKS: 'fatal_helper_fault' } })
  t.equal(without.exit.signal, 'SIGABRT', 'the crash is SIGABRT')
  t.match(report, /^signal = SIGABRT \(6\)$/m, 'the header, written by the crashing thread')
  t.match(report, new RegExp(`^pid = ${pid}$`, 'm'))
  t.match(report, /^crashed thread = #\d+ \S+ \(main\)$/m, 'the crashed thread, the main one')
  t.match(report, /The helper thread faulted while it wrote the report/, 'the report says why it is short')
  t.match(report, /Native stack \(the crashing thread's own: its pc and frame-pointer chain, unsymbolized\):\n {2}#0 +0x[0-9a-f]{16}/, 'the crashing thread\'s own frames')
  t.notMatch(report, /={4} +Threads +={4}/, 'no Threads section from the faulted helper')
})

function caught (pid) {
  const mask = BigInt('0x' + fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/SigCgt:\s*([0-9a-f]+)/)[1])
  const signals = { SIGSEGV: 11, SIGBUS: 7, SIGILL: 4, SIGFPE: 8, SIGABRT: 6 }
  return Object.keys(signals).filter(name => (mask >> BigInt(signals[name] - 1)) & 1n)
}

t.test('off by default: nothing installed, and a crash writes nothing', async t => {
  const idle = async (env) => {
    const child = spawnNode(t, [FIXTURE, 'idle'], { env })
    await waitForOutput(child, /ready/)
    const signals = caught(child.pid)
    child.kill('SIGKILL')
    await child.exited
    return signals
  }
  const bare = await idle({ GMR_FIXTURE_NO_LIBRARY: '1' })
  t.same(await idle({}), bare, `option off: the fault signals caught are Node's own (${bare.join(', ') || 'none'})`)
  t.same(await idle({ GMR_REPORT_ON_FATAL_SIGNAL: '1' }), ['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT'], 'option on: all five')

  const dir = tmpDir(t)
  const off = await crash(t, 'segv', { GMR_LOG_DIR: dir })
  t.equal(off.exit.signal, 'SIGSEGV', 'it still dies of SIGSEGV')
  t.same(reportFiles(dir), [], 'no report file')
  t.notMatch(off.child.stderrText, /fatal signal/, 'nothing on stderr')
})
