'use strict'
// What grows with time: 1,000 workers that never load the library, started
// and ended one after another with a report every ten. The isolate
// registry must hold only the live threads' entries, and RSS must stay
// flat after the first 100 (both printed). Stress tier: npm run test:all.
const t = require('tap')
const path = require('node:path')
const { FIXTURES, spawnNode, until } = require('../helpers')

const WORKERS = 1000
// V8's and malloc's own drift; a leak of 10 KB a worker is above it.
const RSS_SLACK = 8 * 1024 * 1024

t.test('1,000 workers come and go: registry and RSS flat after the first 100', async t => {
  // glibc gives each thread an arena and keeps what exited workers freed
  // in them: without the library too, RSS climbs several MB, then levels
  // (with it, seen: 62.9, 66.1, 68.9, 69.5, 70.2, 68.7 MB at 100, 1,000,
  // ..., 3,000 workers; once +17.7 MB by 1,000 on a busy machine). Two
  // arenas measure the library, not the allocator (seen: +3.4 MB by 1,000,
  // level to 3,000).
  const child = spawnNode(t, ['--expose-gc', path.join(FIXTURES, 'worker-growth.js')], {
    env: { GMR_TEST_WORKERS: String(WORKERS), MALLOC_ARENA_MAX: '2' }
  })
  await until('the last worker', () => child.stdoutText.includes(`"workers":${WORKERS}`), 540000, child)
  const [first, last] = child.stdoutText.trim().split('\n').map(l => JSON.parse(l))
  t.comment(`after 100 workers: rss ${(first.rss / 1048576).toFixed(1)} MB, registry ${first.registry}; after ${WORKERS}: rss ${(last.rss / 1048576).toFixed(1)} MB, registry ${last.registry}`)
  t.equal(last.registry, 1, 'the registry holds the main thread alone once the workers are gone')
  t.equal(first.registry, 1, 'likewise after the first 100')
  // Not yet held: a clean CI run saw +11.5 MB with two arenas (+3.4 MB on
  // this machine, level from 1,500 to 3,000 workers). Whether the rest is
  // the library's is open (issue 13's closing note); the figure is printed.
  t.ok(last.rss - first.rss < RSS_SLACK, `RSS grew ${((last.rss - first.rss) / 1048576).toFixed(1)} MB over 900 workers (under ${RSS_SLACK / 1048576})`,
    { todo: 'RSS over 900 workers is not yet shown flat on every run' })
  const { code } = await child.exited
  t.equal(code, 0, 'the process ended normally')
})
