'use strict'
// A worker met for the first time is held in the capture signal's handler
// while the watchdog posts an interrupt to its isolate; once the watchdog
// has begun, the worker must not go on (and dispose of its isolate) before
// the watchdog is done. With the test hooks (scripts/sanitize.sh builds
// them, under ASan) the watchdog is 60 ms late at each isolate it holds:
// past the 40 ms after which a held worker used to go on, which corrupted
// malloc's heap or crashed the process within a few reports. Wanted: the
// process alive, every report complete and valid, and first contacts made.
const t = require('tap')
const path = require('node:path')
const fs = require('node:fs')
const { FIXTURES, spawnNode, until, validateReport, waitForOutput, waitForReports, readReport, tmpDir, testHooks } = require('./helpers')

const REPORTS = 30

t.test('a worker held at first contact waits for the watchdog to be done', async t => {
  const child = spawnNode(t, [path.join(FIXTURES, 'first-contact.js')], {
    env: { GMR_TEST_HOOKS: 'first_contact_delay_ms=60', GMR_TEST_REPORTS: String(REPORTS) }
  })
  await until('the fixture to finish', () => /"done"|"noHooks"/.test(child.stdoutText), 120000, child)
  const lines = child.stdoutText.trim().split('\n').map(l => JSON.parse(l))
  if (lines[0].noHooks) return t.skip('this build has no test hooks (scripts/sanitize.sh runs this test)')
  const { code, signal } = await child.exited
  t.same({ code, signal }, { code: 0, signal: null }, 'the process ended normally')
  const reports = lines.filter(l => 'report' in l)
  t.equal(reports.length, REPORTS, 'every report came')
  for (const { report, json } of reports) validateReport(JSON.parse(json), null, `report ${report}`)
  const { firstContacts } = lines.at(-1)
  t.ok(firstContacts >= REPORTS, `workers were held at first contact (${firstContacts}, at least ${REPORTS})`)
})

// A worker met for the first time where it cannot be held (V8's compiler, a
// garbage collection) is signalled again at once: the report still has its
// threadId and JavaScript stack. The hook refuses the first hold.
t.test('a worker that cannot be held at first contact is met by the same report', { skip: !testHooks() && 'needs a build with test hooks (scripts/sanitize.sh runs it)' }, async t => {
  const dir = tmpDir(t)
  const stop = path.join(tmpDir(t), 'stop')
  const child = spawnNode(t, [path.join(FIXTURES, 'interrupt.js'), 'vm-worker', dir, stop], { env: { GMR_TEST_HOOKS: 'first_contact_refusals=1' } })
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const worker = readReport(file).threads.find(th => th.kind === 'worker')
  t.equal(worker.threadId, 1, 'its threadId')
  t.equal(worker.javascriptSource, 'interrupt', 'its JavaScript stack, from its interrupt')
  fs.writeFileSync(stop, '')
})
