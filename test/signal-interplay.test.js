'use strict'
// The application listens on the report signal too (README: "Signals
// shared with the application"): before or after setup, once, removed,
// all removed, or toggled without pause while signals arrive. Every signal
// makes a report, the application's listener runs while it listens, and
// the signal never ends the process.
const t = require('tap')
const path = require('node:path')
const { FIXTURES, spawnNode, waitForOutput, tmpDir, reportFiles, until, isAlive, checkReports, sleep } = require('./helpers')

const APP = path.join(FIXTURES, 'signal-interplay.js')

function service (t, mode) {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, mode], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) } })
  return { child, dir }
}

/** Sends the signal and waits for the n-th report. */
async function signal (child, dir, n) {
  child.kill('SIGUSR2')
  await until(`report ${n}`, () => reportFiles(dir).length >= n, 15000, child)
}

const heard = child => (child.stdoutText.match(/^app listener \d+$/gm) || []).length

for (const mode of ['before', 'after']) {
  t.test(`a listener added ${mode} setup: both it and the report run, for every signal`, async t => {
    const { child, dir } = service(t, mode)
    await waitForOutput(child, /^ready/m)
    for (let n = 1; n <= 3; n++) {
      await signal(child, dir, n)
      await until(`listener call ${n}`, () => heard(child) >= n, 5000, child)
    }
    t.equal(checkReports(dir).length, 3, 'three reports')
    t.equal(heard(child), 3, 'the listener ran three times')
    t.ok(isAlive(child.pid))
  })
}

for (const mode of ['removed', 'once', 'removeAll']) {
  t.test(`a listener ${mode === 'once' ? 'added with once' : mode === 'removed' ? 'added and removed' : 'removed with removeAllListeners'}: the default action never comes back`, async t => {
    const { child, dir } = service(t, mode)
    await waitForOutput(child, /^ready/m)
    for (let n = 1; n <= 3; n++) await signal(child, dir, n)
    await sleep(200)
    t.equal(heard(child), mode === 'once' ? 1 : 0, mode === 'once' ? 'the listener ran once' : 'no listener ran')
    t.equal(checkReports(dir).length, 3, 'a report for every signal')
    t.ok(isAlive(child.pid), 'the process lives')
    t.equal((await Promise.race([child.exited, sleep(100).then(() => null)])), null, 'and did not exit')
  })
}

// Each time the last listener goes, libuv restores the default action; the
// library's own listener on the signal keeps that from happening at all.
t.test('a listener toggled on and off every millisecond under a stream of signals for 2 s: never killed', async t => {
  const { child, dir } = service(t, 'toggle')
  await waitForOutput(child, /^ready/m)
  await sleep(100)
  // Spread out, so that some land between an off and the next on.
  let sent = 0
  for (const end = Date.now() + 2000; Date.now() < end && isAlive(child.pid); sent++) {
    child.kill('SIGUSR2')
    await new Promise(resolve => setImmediate(resolve))
  }
  await sleep(500)
  t.ok(isAlive(child.pid), `alive after ${sent} signals (${checkReports(dir).length} reports, the listener ran ${heard(child)} times)`)
  t.equal(child.signalCode, null, 'not ended by a signal')
  t.ok(reportFiles(dir).length >= 1, 'reports came')
})
