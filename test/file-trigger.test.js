'use strict'
// Touching the trigger file of a stuck service.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { APP, SPIN_LINE, mainThreadSpun, spawnNode, waitForOutput, tmpDir, waitForTextReport, isAlive } = require('./helpers')

t.test('touching the trigger file of a stuck service writes a text report to stderr', async t => {
  const dir = tmpDir(t)
  const trigger = path.join(dir, 'gmr_trigger')
  const child = spawnNode(t, [APP, 'programmatic', 'spin'], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ fileEventHandler: trigger, signal: 'none', sectionTimeout: 200 }) }
  })
  await waitForOutput(child, /spinning/)
  await mainThreadSpun(child)
  t.ok(fs.existsSync(trigger), 'the missing trigger file was created at setup')
  const now = new Date()
  fs.utimesSync(trigger, now, now)
  const text = await waitForTextReport(child)
  const lines = text.split('\n')
  t.equal(lines[0], '====                        Guru Meditation                         ====')
  t.match(text, /product = fixture-app/)
  t.match(text, /vendor = guru-meditation tests/)
  t.match(text, /version = 1\.2\.3/)
  t.match(text, new RegExp(`at spinForever \\(.*app\\.js:${SPIN_LINE}:\\d+\\)`))
  t.match(text, /====\s+Threads\s+====/)
  t.match(text, /====\s+Processes\s+====/)
  t.match(text, /====\s+Configuration\s+====/)
  t.match(text, /====\s+Good Section\s+====/)
  t.match(text, new RegExp(`trigger = file ${trigger.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  t.ok(isAlive(child.pid))
})
