'use strict'
// Where reports go: file names, and stderr when logDir fails.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, APP, spawnNode, waitForOutput, tmpDir, waitForTextReport, reportFiles, readReport, isAlive } = require('./helpers')

t.test('a removed logDir falls back to stderr with one warning', async t => {
  const dir = tmpDir(t)
  const logDir = path.join(dir, 'logs')
  fs.mkdirSync(logDir)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir }) }
  })
  await waitForOutput(child, /ready/)
  fs.rmSync(logDir, { recursive: true })
  process.kill(child.pid, 'SIGUSR2')
  const text = await waitForTextReport(child)
  t.match(text, /Guru Meditation/)
  const warnings = child.stderrText.match(/guru-meditation: cannot write the report to .*logs/g) || []
  t.equal(warnings.length, 1, 'one clear warning')
  t.ok(isAlive(child.pid))
})

t.test('two reports in the same second get distinct names: the second takes _1', async t => {
  const dir = tmpDir(t)
  // writeReport twice at once, from the start of a second, until both land
  // in one (a loaded machine may take a second over two captures).
  const code = `
    const gmr = require(${JSON.stringify(ROOT)})
    gmr.setupAutorun('1.0', { logDir: ${JSON.stringify(dir)}, serviceName: 'twice', signal: false })
    async function pair () {
      while (Date.now() % 1000 > 50) await new Promise(resolve => setImmediate(resolve))
      const paths = await Promise.all([gmr.writeReport({ format: 'json' }), gmr.writeReport({ format: 'json' })])
      console.log('PAIR ' + JSON.stringify(paths))
    }
    ;(async () => { for (let i = 0; i < 3; i++) await pair(); console.log('done') })()
  `
  const child = spawnNode(t, ['-e', code])
  await waitForOutput(child, /^done$/m, 'stdoutText', 60000)
  const pairs = [...child.stdoutText.matchAll(/^PAIR (.*)$/gm)].map(m => JSON.parse(m[1]))
  const second = file => Date.parse(readReport(file).package.generatedAt) / 1000 | 0
  const same = pairs.find(([a, b]) => second(a) === second(b))
  if (!t.ok(same, `two reports in one second (of ${pairs.length} pairs)`)) return
  const [a, b] = same
  const base = `twice_gurumeditation_${new Date(second(a) * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14)}`
  t.same(same.map(f => path.basename(f)).sort(), [base, `${base}_1`], 'the first takes the name, the second _1')
  t.not(fs.statSync(a).ino, fs.statSync(b).ino, 'two files, not one linked twice')
  t.not(readReport(a).package.generatedAt, readReport(b).package.generatedAt, 'two captures')
  t.same(reportFiles(dir).length, pairs.length * 2, 'every report has a file of its own')
})
