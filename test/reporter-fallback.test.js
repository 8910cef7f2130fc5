'use strict'
// A trigger always yields a report: when the reporter environment cannot
// start (every file descriptor taken, or a launch made to fail) or fails
// after launch (its formatter throws, it is torn down under the report), the
// native fallback writes what was captured, as text that says so. The
// injected failures need a build with test hooks (scripts/sanitize.sh).
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { testHooks, FIXTURES, ROOT, spawnNode, waitForOutput, waitForTextReport, tmpDir, waitForReports, reportFiles, until } = require('./helpers')

const APP = path.join(FIXTURES, 'reporter-fallback.js')
const MARKER = 'written by the native fallback because: '
const hooks = testHooks()
const needHooks = hooks ? {} : { skip: 'needs a build with test hooks (GMR_BUILD_TEST_HOOKS=1; scripts/sanitize.sh runs it)' }
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

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

/** The fallback's report file: its reason, and what was captured of the blocked main thread. */
async function fallbackReport (t, child, dir) {
  const [file] = await waitForReports(dir, 1, 15000, child)
  const text = fs.readFileSync(file, 'utf8')
  t.match(text, /^=+\n====\s+Guru Meditation\s+====\n/, 'a text report, although JSON was configured')
  t.match(text, 'End of Guru Meditation Report', 'complete')
  t.match(text, 'trigger = signal SIGUSR2')
  t.match(text, `Thread #${child.pid} `, 'the main thread is in it')
  t.match(text, /Native stack:\n {2}#0 +0x[0-9a-f]{16} {2}\S*read\S*\+0x/, 'its native frames, symbolized')
  t.match(text, /at waitForTheTest \(.*reporter-fallback\.js:\d+/, 'and the JavaScript frames the capture got')
  await until('the stderr line naming the file', () => child.stderrText.includes(`the native fallback wrote the report to ${file}`), 5000, child)
  return { file, text }
}

/** After the main thread is free again, its own queued call finds the report written: still one. */
async function stillOne (t, child, dir) {
  await unblock(child)
  await sleep(500)
  t.equal(reportFiles(dir).length, 1, 'one report, not a second from the main thread')
}

t.test('every file descriptor taken: the report comes on stderr, written by the native fallback', async t => {
  const dir = tmpDir(t)
  const child = await blockedService(t, { action: 'emfile', dir, fdLimit: 200 })
  t.match(child.stdoutText, /full \d+/, 'the service took every descriptor left')
  child.kill('SIGUSR2')
  const report = await waitForTextReport(child)
  t.match(report, `${MARKER}the reporter environment could not start: Failed to initialize loop: EMFILE`)
  t.match(report, 'trigger = signal SIGUSR2')
  t.match(child.stderrText, `guru-meditation: cannot write the report to ${dir} (Too many open files); writing it to stderr instead`)
  t.same(reportFiles(dir), [], 'no file: there was no descriptor for one')
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
