'use strict'
// process.exit() while a triggered report is being captured or written (the
// main thread blocked in a native call, so the reporter environment has it):
// no crash, no hang past the exit bound (README: "When the process exits
// during a report"), and the report is not lost silently: it is in the log
// directory (written by the environment, or by the native fallback), or
// stderr says it was cut short. GMR_EXIT_RUNS runs (20 here; the sanitizer
// tier, scripts/sanitize.sh, runs 500) at delays varied between trigger
// and exit.
const t = require('tap')
const path = require('node:path')
const { FIXTURES, spawnNode, waitForOutput, tmpDir, reportFiles, until, sleep } = require('./helpers')

const APP = path.join(FIXTURES, 'reporter-fallback.js')
const RUNS = Number(process.env.GMR_EXIT_RUNS || 20)
const PARALLEL = 2
const MAX_DELAY_MS = 600 // past the capture, the pickup and the reporter's start

// The stress tier's 500 runs take minutes under the sanitizers.
t.setTimeout(Math.max(120000, RUNS * 3000))

async function run (t, i) {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'exit'], { stdin: 'pipe', env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) } })
  await waitForOutput(child, /blocking/)
  await sleep(50) // inside readSync by now
  // Spread over the window: golden-ratio steps, so 20 runs cover it evenly.
  const delay = Math.floor(((i * 0.618034) % 1) * MAX_DELAY_MS)
  child.kill('SIGUSR2')
  await sleep(delay)
  child.stdin.write('x') // the main thread returns and calls process.exit(0)
  // Not a timing assertion: a hang (past the 2 s bound, on any machine) is
  // what this catches.
  const { code, signal } = await until('the process to exit', () => child.exitCode !== null || child.signalCode !== null
    ? { code: child.exitCode, signal: child.signalCode }
    : null, 20000, child)
  const files = reportFiles(dir)
  const cutShort = child.stderrText.includes('report cut short by process exit')
  const problems = []
  if (code !== 0 || signal !== null) problems.push(`exited with ${signal ?? code}`)
  if (files.length === 0 && !cutShort) problems.push('no report, and stderr does not say it was cut short')
  if (/FATAL|Segmentation|AddressSanitizer|Aborted/.test(child.stderrText)) problems.push('a crash on stderr')
  return { i, delay, problems, stderr: child.stderrText, files: files.length, cutShort }
}

t.test(`${RUNS} exits while a report is in flight: no crash, no hang, no report lost silently`, async t => {
  const results = []
  let next = 0
  const lane = async () => {
    for (let i = next++; i < RUNS; i = next++) results.push(await run(t, i))
  }
  await Promise.all(Array.from({ length: PARALLEL }, lane))
  const failed = results.filter(r => r.problems.length > 0)
  t.same(failed.map(r => `run ${r.i} (exit ${r.delay} ms after the trigger): ${r.problems.join('; ')}\n${r.stderr}`), [], 'every run')
  t.equal(results.length, RUNS)
  t.comment(`${results.filter(r => r.files > 0).length} with a report file, ${results.filter(r => r.cutShort).length} said cut short`)
})

t.test('exit while the main thread awaits a section of its report: the fallback writes it', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'slow'], {
    stdin: 'pipe',
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json', sectionTimeout: 60000 }) }
  })
  await waitForOutput(child, /idle/)
  // The free event loop takes the report within the pickup time (100 ms),
  // then waits for the section (60 s). A loaded machine may delay it past
  // that: the reporter environment writes that report, and the next signal
  // tries again.
  const taken = () => child.stdoutText.includes('section called')
  for (let i = 0; i < 20 && !taken(); i++) {
    child.kill('SIGUSR2')
    await until('the report taken', () => taken() || reportFiles(dir).length > i, 15000, child)
  }
  t.ok(taken(), 'the main thread took a report and awaits its section')
  const before = reportFiles(dir)
  child.stdin.write('x')
  const { code } = await until('the process to exit', () => child.exitCode !== null || child.signalCode !== null ? { code: child.exitCode } : null, 20000, child)
  t.equal(code, 0, 'exits as it asked')
  const added = reportFiles(dir).filter(f => !before.includes(f))
  t.equal(added.length, 1, 'the report it was writing is there')
  const file = path.join(dir, added[0])
  t.match(require('node:fs').readFileSync(file, 'utf8'), 'written by the native fallback because: report cut short by process exit (the main thread was writing it)\n')
  t.match(child.stderrText, `report cut short by process exit (the main thread was writing it); the native fallback wrote the report to ${file}`)
})
