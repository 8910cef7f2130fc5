'use strict'
// Workers created and terminated in a tight loop for 30 s while reports are
// taken without pause, from the signal and from the API: the process lives,
// every report comes within a bound and is whole.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { FIXTURES, spawnNode, waitForOutput, tmpDir, reportFiles, until, isAlive, readReport, checkReports } = require('../helpers')

const SECONDS = 30
const BOUND_MS = 10000 // a report that takes longer than this is stuck

t.test(`worker churn for ${SECONDS} s under continuous reports`, async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [path.join(FIXTURES, 'churn.js')], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) }
  })
  await waitForOutput(child, /^ready/m)

  const end = Date.now() + SECONDS * 1000
  let signalled = 0
  let slowest = 0
  const problems = []
  const seen = new Set()
  while (Date.now() < end) {
    const start = Date.now()
    child.kill('SIGUSR2')
    signalled++
    const name = await until(`report ${signalled}`, () => reportFiles(dir).find(f => !seen.has(f)), BOUND_MS).catch(err => {
      // A hang and a crash look alike from here: say which.
      const exit = child.exitCode !== null || child.signalCode !== null ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : 'alive, not answering'
      throw new Error(`${err.message}: the process is ${exit}\nstdout: ${child.stdoutText.slice(-500)}\nstderr: ${child.stderrText.slice(-2000)}`)
    })
    seen.add(name)
    slowest = Math.max(slowest, Date.now() - start)
    const file = path.join(dir, name)
    let r
    try { r = readReport(file) } catch (err) { problems.push(`${file}: ${err.message}`); continue }
    const main = r.threads.find(th => th.kind === 'main')
    if (!main || !main.native.length) problems.push(`${file}: no main thread stack: ${JSON.stringify(main)}`)
    // A main thread that did not pick the report up in time (starting a
    // worker, on a loaded machine) leaves it to the reporter environment,
    // which says its configuration is the one of setup: not a fault.
    const errors = r.errors.filter(e => !(e.startsWith('configuration: as of setup') && r.package.writtenBy.startsWith('reporter environment')))
    if (errors.length) problems.push(`${file}: ${errors.join('; ')}`)
    if (!r.sections.some(s => s.name === 'Churn')) problems.push(`${file}: no user section`)
    // A worker that ended between the listing and its signal, or was still
    // starting (blocking all signals), is said to be so.
    for (const th of r.threads.filter(th => th.note.startsWith('native stack not captured'))) {
      if (!/exited during the capture|did not answer the capture signal in time|blocks the capture signal/.test(th.note)) problems.push(`${file}: thread ${th.tid}: ${th.note}`)
    }
  }
  const lines = child.stdoutText.match(/^api (\d+) (\d+) (\d+)$/gm)
  const [, apiReports, apiSlowest, workers] = lines[lines.length - 1].split(' ').map(Number)
  const errors = child.stdoutText.split('\n').filter(l => l.startsWith('ERROR'))
  t.comment(`${SECONDS} s: workers started ${workers}, signal reports ${signalled} (slowest ${slowest} ms), API reports ${apiReports} (slowest ${apiSlowest} ms), errors ${errors.length + problems.length}`)
  t.ok(workers > 100, `workers came and went (${workers})`)
  t.ok(signalled >= 10, `reports from the signal (${signalled})`)
  t.ok(apiReports >= 10, `reports from the API (${apiReports})`)
  t.ok(apiSlowest < BOUND_MS, `every API report came within ${BOUND_MS} ms (slowest ${apiSlowest})`)
  for (const p of problems) t.comment(p)
  t.same(problems, [], 'every signal report is complete')
  t.same(errors, [], 'every API report is complete, no worker failed')
  t.equal(checkReports(dir).length, signalled, 'one report file per signal')
  t.ok(isAlive(child.pid), 'no crash')
  t.notMatch(child.stderrText, /guru-meditation|Assertion|Segmentation/, 'nothing on stderr')
})
