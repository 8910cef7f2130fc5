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
const { FIXTURES, spawnNode, until, validateReport } = require('./helpers')

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
