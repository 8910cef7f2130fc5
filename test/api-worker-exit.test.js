'use strict'
// A worker that asked for a report (generateReport) and ends before the
// watchdog delivers it: Node 20 and 22 delete the worker's thread-safe
// function with its environment, and a delivery made after that wrote into
// freed memory. With the test hooks (scripts/sanitize.sh builds them)
// every delivery is 1 s late, and malloc fills what is freed
// (MALLOC_PERTURB_), so a delivery into a freed function crashes or hangs
// the process. Wanted: none delivered to the workers that ended, the
// process alive, and its own report after them.
const t = require('tap')
const path = require('node:path')
const { FIXTURES, spawnNode, until } = require('./helpers')

const RUNS = 10

t.test('a report asked by a worker that ends before it comes', async t => {
  const child = spawnNode(t, [path.join(FIXTURES, 'api-worker-exit.js')], {
    env: { GMR_TEST_HOOKS: 'api_deliver_delay_ms=1000', GMR_TEST_RUNS: String(RUNS), MALLOC_PERTURB_: '204' }
  })
  await until('the fixture to finish', () => /"done"|"noHooks"/.test(child.stdoutText), 60000, child)
  const last = JSON.parse(child.stdoutText.trim().split('\n').at(-1))
  if (last.noHooks) return t.skip('this build has no test hooks (scripts/sanitize.sh runs this test)')
  const { code, signal } = await child.exited
  t.same({ code, signal }, { code: 0, signal: null }, 'the process ended normally')
  t.equal(last.delivered, 0, 'no report reached a worker that had ended')
  t.ok(last.threads > 0, 'the main thread\'s own report came after them')
})
