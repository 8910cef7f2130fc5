'use strict'
// Capture signals that reach their thread after the round ended: with the
// test hooks (scripts/sanitize.sh builds them, under ASan), every other
// capture handler sleeps before it claims its slot (600 ms: past the whole
// round, whose slots a late claim once wrote after they were freed), or
// while it copies (1.2 s: past the second a round waits for a claimed
// slot, which is then passed by, never reused under its handler). Meeting rounds (256-byte copies) and
// reports (128 KB) interleave. Wanted: at least 1,000 late handlers, no
// sanitizer report (sanitize.sh fails on any), the process alive, and every
// report complete: each thread alive around it listed, with its stack or the
// reason it has none.
const t = require('tap')
const path = require('node:path')
const { FIXTURES, spawnNode, until } = require('./helpers')

const LATE_WANTED = 1000

async function run (t, hook, ms, REPORTS) {
  const child = spawnNode(t, [path.join(FIXTURES, 'late-capture.js')], {
    env: { GMR_TEST_HOOKS: `${hook}=${ms}`, GMR_TEST_REPORTS: String(REPORTS), UV_THREADPOOL_SIZE: '16' }
  })
  await until('the fixture to finish', () => /"done"|"noHooks"/.test(child.stdoutText), 240000, child)
  const lines = child.stdoutText.trim().split('\n').map(l => JSON.parse(l))
  if (lines[0].noHooks) return null
  const { code } = await child.exited
  t.equal(code, 0, `${hook}: the process ended normally`)
  const reports = lines.filter(l => 'report' in l)
  t.equal(reports.length, REPORTS, `${hook}: every report came`)
  for (const r of reports) {
    const listed = new Set(r.threads.map(th => th.tid))
    t.same(r.steady.filter(tid => !listed.has(tid)), [], `${hook}: report ${r.report} lists every thread`)
    t.ok(r.threads.some(th => th.kind === 'main'), `${hook}: report ${r.report} has the main thread`)
    // Each thread has its stack, or the report says why not.
    const unexplained = r.threads.filter(th => th.kind !== 'guru-meditation' && th.frames === 0 && !th.note)
    t.same(unexplained, [], `${hook}: report ${r.report}: every thread has frames or a note`)
  }
  return lines.at(-1).late
}

t.test('late capture handlers touch only memory that stays theirs', async t => {
  const claim = await run(t, 'capture_claim_delay_ms', 600, 60)
  if (claim === null) return t.skip('this build has no test hooks (scripts/sanitize.sh runs this test)')
  const copy = await run(t, 'capture_copy_delay_ms', 1200, 4)
  t.comment(`late handlers: ${claim} before claiming, ${copy} while copying`)
  t.ok(claim + copy >= LATE_WANTED, `at least ${LATE_WANTED} late handlers (${claim + copy})`)
})
