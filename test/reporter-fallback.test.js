'use strict'
// A trigger always yields a report: when the reporter environment cannot
// start (every file descriptor taken, or a launch made to fail) or fails
// after launch (its formatter throws, it is torn down under the report), the
// native fallback writes what was captured, as text that says so. The
// injected failures need a build with test hooks (scripts/sanitize.sh).
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { testHooks, FIXTURES, ROOT, runGmr, spawnNode, waitForOutput, waitForTextReport, tmpDir, waitForReports, reportFiles, until, sleep } = require('./helpers')
const { parseText } = require('./helpers/validate')

const APP = path.join(FIXTURES, 'reporter-fallback.js')
const MARKER = 'written by the native fallback because: '
const hooks = testHooks()
const needHooks = hooks ? {} : { skip: 'needs a build with test hooks (GMR_BUILD_TEST_HOOKS=1; scripts/sanitize.sh runs it)' }

/** The fixture, its main thread blocked in a read of stdin until the test writes to it. */
async function blockedService (t, { action = 'block', dir, hooks = '', fdLimit = 0, args = [], env = {} }) {
  const child = spawnNode(t, [...args, APP, action], {
    stdin: 'pipe',
    fdLimit,
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }), GMR_TEST_HOOKS: hooks, ...env }
  })
  await waitForOutput(child, /blocking/)
  await sleep(200) // inside readSync by now
  return child
}

async function unblock (child) {
  child.stdin.write('x')
  await waitForOutput(child, /unblocked/)
}

/** What the fallback's report (text) holds of the blocked main thread. */
function blockedMainThread (t, text, child) {
  const main = parseText(text).threads.find(th => th.tid === child.pid)
  t.ok(main, `the main thread (#${child.pid}) is in it`)
  if (!main) return null
  t.equal(main.kind, 'main')
  t.match(main.native[0] && main.native[0].rest, /^\S*read\S*\+0x[0-9a-f]+ +\(/, 'its native frames, symbolized')
  t.ok((main.javascript || []).some(f => /^waitForTheTest \(.*reporter-fallback\.js:\d+/.test(f)), 'and the JavaScript frames the capture got')
  return main
}

/** The fallback's report file: its reason, and what was captured of the blocked main thread. */
async function fallbackReport (t, child, dir) {
  const [file] = await waitForReports(dir, 1, 15000, child)
  const text = fs.readFileSync(file, 'utf8')
  t.match(text, /^=+\n====\s+Guru Meditation\s+====\n/, 'a text report, although JSON was configured')
  t.match(text, 'End of Guru Meditation Report', 'complete')
  t.match(text, 'trigger = signal SIGUSR2')
  blockedMainThread(t, text, child)
  await until('the stderr line naming the file', () => child.stderrText.includes(`the native fallback wrote the report to ${file}`), 5000, child)
  return { file, text }
}

/**
 * With every descriptor taken, the capture still reads what it reads from
 * /proc and the ELF files: every thread, its name and state, the native
 * stack of each but the capturing one, and no file it could not open.
 */
function everyThread (t, text, child) {
  const { threads } = parseText(text)
  t.ok(threads.length >= 2, `${threads.length} threads listed`)
  blockedMainThread(t, text, child)
  for (const th of threads) {
    t.ok(th.name, `thread #${th.tid} has its name`)
    t.notOk(th.lines.includes('state = unknown'), `thread #${th.tid} has its state`)
    if (th.kind !== 'guru-meditation') t.ok(th.native.length > 0, `thread #${th.tid} has its native stack`)
  }
  t.notMatch(text, 'no file descriptor was free', 'no file it could not open')
}

/** After the main thread is free again, its own queued call finds the report written: still one. */
async function stillOne (t, child, dir) {
  await unblock(child)
  await sleep(500)
  t.equal(reportFiles(dir).length, 1, 'one report, not a second from the main thread')
}

t.test('every file descriptor taken: the fallback writes the report file, every thread in it', async t => {
  const dir = tmpDir(t)
  const child = await blockedService(t, { action: 'emfile', dir, fdLimit: 200 })
  t.match(child.stdoutText, /full \d+/, 'the service took every descriptor left')
  child.kill('SIGUSR2')
  const { text } = await fallbackReport(t, child, dir)
  t.match(text, `${MARKER}the reporter environment could not start: Failed to initialize loop: EMFILE\n`)
  everyThread(t, text, child)
  t.notMatch(child.stderrText, 'cannot write the report', 'written where reports go')
  t.notMatch(child.stderrText, 'ignoring the gmr request', 'no gmr request made up from a failed open')
  await stillOne(t, child, dir)
})

t.test('every file descriptor taken: gmr <pid> gets the report, from the native fallback', async t => {
  const dir = tmpDir(t)
  const child = await blockedService(t, { action: 'emfile', dir, fdLimit: 200 })
  const r = await runGmr([String(child.pid)])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, `${MARKER}the reporter environment could not start: Failed to initialize loop: EMFILE\n`)
  t.match(r.stdout, 'trigger = cli SIGUSR2')
  everyThread(t, r.stdout, child)
  t.same(reportFiles(dir), [], 'the report went to gmr, not to logDir')
  t.notMatch(child.stderrText, 'ignoring the gmr request')
  await unblock(child)
})

t.test('every file descriptor taken and logDir gone: the report comes on stderr, every thread in it', async t => {
  const dir = tmpDir(t)
  const logDir = path.join(dir, 'logs')
  fs.mkdirSync(logDir)
  const child = await blockedService(t, { action: 'emfile', dir: logDir, fdLimit: 200 })
  t.match(child.stdoutText, /full \d+/, 'the service took every descriptor left')
  fs.rmSync(logDir, { recursive: true })
  child.kill('SIGUSR2')
  const report = await waitForTextReport(child)
  t.match(report, `${MARKER}the reporter environment could not start: Failed to initialize loop: EMFILE`)
  t.match(report, 'trigger = signal SIGUSR2')
  t.match(child.stderrText, `guru-meditation: cannot write the report to ${logDir} (No such file or directory); writing it to stderr instead`)
  everyThread(t, report, child)
  t.notOk(fs.existsSync(logDir), 'nothing made in its place')
  await unblock(child)
})

t.test('every file descriptor taken, and the spare\'s place taken first by another thread: the report says what it could not read', needHooks, async t => {
  const dir = tmpDir(t)
  const child = await blockedService(t, { action: 'emfile', dir, fdLimit: 200, hooks: 'spare_stolen' })
  child.kill('SIGUSR2')
  const report = await waitForTextReport(child)
  t.match(report, `${MARKER}the reporter environment could not start: Failed to initialize loop: EMFILE`)
  t.match(child.stderrText, `guru-meditation: cannot write the report to ${dir} (Too many open files); writing it to stderr instead`)
  // The thread list and the stack copies' bounds come from the descriptors
  // held since setup; names, states and symbols needed one more.
  const { threads } = parseText(report)
  t.ok(threads.length >= 2, `${threads.length} threads listed`)
  const main = threads.find(th => th.tid === child.pid)
  t.ok(main && main.kind === 'main', 'the main thread is in it')
  t.ok(main && main.native.length >= 5, 'with its native stack')
  t.ok(main && (main.javascript || []).some(f => /^waitForTheTest \(.*reporter-fallback\.js:\d+/.test(f)), 'and its JavaScript frames')
  t.match(report, new RegExp(`\\(no file descriptor was free for \\d+ files the capture reads: [^)]*/proc/self/task/${child.pid}/comm`), 'which files it could not read')
  t.notMatch(child.stderrText, 'ignoring the gmr request', 'no gmr request made up from a failed open')
  await unblock(child)
})

t.test('a launch that fails: the fallback writes the report file', needHooks, async t => {
  const dir = tmpDir(t)
  const child = await blockedService(t, { dir, hooks: 'reporter_fail_launch' })
  child.kill('SIGUSR2')
  const { text } = await fallbackReport(t, child, dir)
  t.match(text, `${MARKER}the reporter environment could not start: injected failure (test hook reporter_fail_launch)\n`)
  await stillOne(t, child, dir)
})

t.test('a formatter that throws: the fallback writes the report file', needHooks, async t => {
  const dir = tmpDir(t)
  const child = await blockedService(t, { dir, hooks: 'reporter_fail_after_launch=1' })
  child.kill('SIGUSR2')
  const { text } = await fallbackReport(t, child, dir)
  t.match(text, `${MARKER}the reporter failed: SyntaxError:`)
  t.match(child.stderrText, 'guru-meditation: the report failed: SyntaxError:', 'the stack on stderr')
  await stillOne(t, child, dir)
})

t.test('an environment torn down under the report: the fallback writes the report file', needHooks, async t => {
  const dir = tmpDir(t)
  const child = await blockedService(t, { dir, hooks: 'reporter_fail_after_launch=2' })
  child.kill('SIGUSR2')
  const { text } = await fallbackReport(t, child, dir)
  t.match(text, `${MARKER}the reporter environment ended before the report was written\n`)
  await stillOne(t, child, dir)
})

t.test('the reporter environment is not the main thread: the application\'s signal listeners run once', needHooks, async t => {
  const dir = tmpDir(t)
  // The environment stays up after its report, so that the later signals
  // reach it while its loop turns.
  const child = await blockedService(t, {
    dir,
    hooks: 'reporter_linger_ms=1500',
    env: { GMR_TEST_APP_LISTENER: '1' },
    args: ['--report-on-signal', '--report-compact', `--report-directory=${dir}`]
  })
  const signals = 3
  child.kill('SIGUSR2')
  await waitForReports(dir, 1, 15000, child)
  for (let i = 1; i < signals; i++) {
    await sleep(150)
    child.kill('SIGUSR2')
  }
  await sleep(1500)
  await unblock(child)
  const nodeReports = () => fs.readdirSync(dir).filter(f => /^report\..*\.json$/.test(f)).length
  await until(`${signals} Node.js reports`, () => nodeReports() >= signals, 15000, child)
  await until(`${signals} runs of the application's listener`, () => (child.stdoutText.match(/app listener ran/g) || []).length >= signals, 15000, child)
  await sleep(500)
  t.equal(nodeReports(), signals, '--report-on-signal wrote one Node.js report per signal')
  t.equal((child.stdoutText.match(/app listener ran/g) || []).length, signals, 'the process.on listener ran once per signal')
})
