'use strict'
// Where reports go: file names, and stderr when logDir fails.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { APP, spawnNode, waitForOutput, tmpDir, waitForReports, waitForTextReport, isAlive, until } = require('./helpers')

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

t.test('two reports in the same second get distinct names', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, serviceName: 'twice' }) }
  })
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  await waitForReports(dir, 1, 15000, child)
  process.kill(child.pid, 'SIGUSR2')
  const files = await waitForReports(dir, 2, 15000, child)
  t.equal(new Set(files).size, 2)
  await until('process alive', () => isAlive(child.pid))
})
