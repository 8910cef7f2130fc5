'use strict'
// Bad options and environment variables: a clear error naming them, at setup,
// with nothing installed and a previous good setup still in force; in real
// processes, as a user would meet them.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, FIXTURES, spawnNode, tmpDir, waitForOutput, waitForReports, until, readReport } = require('./helpers')
const { cases } = require('./fixtures/bad-options')

const SIGUSR1_BIT = 1n << 9n
const SIGUSR2_BIT = 1n << 11n

function scratch (t) {
  const dir = tmpDir(t)
  fs.writeFileSync(path.join(dir, 'file'), '')
  fs.mkdirSync(path.join(dir, 'sub'))
  fs.mkdirSync(path.join(dir, 'reports'))
  fs.symlinkSync(path.join(dir, 'file'), path.join(dir, 'link'))
  return dir
}

async function runCases (t, dir, mode) {
  const child = spawnNode(t, [path.join(FIXTURES, 'setup-cases.js'), dir, mode])
  const done = await waitForOutput(child, /^DONE (.*)$/m, 'stdoutText', 30000)
  const results = new Map()
  for (const m of child.stdoutText.matchAll(/^CASE (.*)$/gm)) {
    const r = JSON.parse(m[1])
    results.set(r.title, r)
  }
  return { child, results, done: JSON.parse(done[1]) }
}

function checkCases (t, dir, results) {
  for (const c of cases(dir)) {
    const r = results.get(c.title)
    t.ok(r, `${c.title}: ran`)
    if (!r) continue
    t.ok(r.error, `${c.title}: setup throws`)
    if (!r.error) continue
    t.equal(r.error.name, 'GuruMeditationOptionError', `${c.title}: an OptionError`)
    t.equal(r.error.option, c.option, `${c.title}: names ${c.option}`)
    t.match(r.error.message, c.message, `${c.title}: says why`)
    t.ok(r.error.message.includes(c.option), `${c.title}: the message names it too`)
    t.equal(r.after.sigCgt, r.before.sigCgt, `${c.title}: no signal handler installed or removed`)
    t.equal(r.after.watchdog, r.before.watchdog, `${c.title}: the watchdog as before`)
    t.same(r.after.files, r.before.files, `${c.title}: no file created`)
  }
}

t.test('every bad option and variable is an error naming it, with nothing installed', async t => {
  const dir = scratch(t)
  const { results, done } = await runCases(t, dir, 'fresh')
  checkCases(t, dir, results)
  t.equal(done.watchdog, false, 'no watchdog thread after only failed setups')
  t.equal(BigInt('0x' + done.sigCgt) & SIGUSR2_BIT, 0n, 'SIGUSR2 keeps its default action')
  t.same(done.files, ['file', 'link', 'reports', 'sub'], 'no trigger file was created')
})

t.test('after a good setup, failed ones leave it in force', async t => {
  const dir = scratch(t)
  const { child, results, done } = await runCases(t, dir, 'after-good')
  checkCases(t, dir, results)
  const mask = BigInt('0x' + done.sigCgt)
  t.not(mask & SIGUSR1_BIT, 0n, 'the good setup\'s SIGUSR1 is still caught')
  t.equal(mask & SIGUSR2_BIT, 0n, 'SIGUSR2 was never taken')
  t.equal(done.watchdog, true)
  // The good setup's signal, logDir and trigger file still work.
  process.kill(child.pid, 'SIGUSR1')
  const [first] = await waitForReports(path.join(dir, 'reports'), 1, 15000, child)
  t.match(path.basename(first), /^good_gurumeditation_/)
  t.match(readReport(first), /trigger\s*=\s*signal SIGUSR1/)
  await new Promise(resolve => setTimeout(resolve, 1100)) // a second report name
  fs.utimesSync(path.join(dir, 'good-trigger'), new Date(), new Date())
  const files = await waitForReports(path.join(dir, 'reports'), 2, 15000, child)
  t.match(readReport(files[1]), /trigger\s*=\s*file .*good-trigger/)
})

async function setupIn (t, options, env = {}) {
  const code = `
    const gmr = require(${JSON.stringify(ROOT)})
    try {
      gmr.setupAutorun('1.0', ${options})
      console.log('SETUP-OK')
    } catch (err) {
      console.log('SETUP-ERROR ' + JSON.stringify({ name: err.name, option: err.option, message: err.message }))
    }
  `
  const child = spawnNode(t, ['-e', code], { env })
  const { code: exitCode } = await child.exited
  t.equal(exitCode, 0, 'the process itself is fine')
  const m = child.stdoutText.match(/SETUP-ERROR (.*)/)
  return m ? JSON.parse(m[1]) : null
}

t.test('a bad variable with the preload stops the start with one clear line', async t => {
  const child = spawnNode(t, ['-r', 'guru-meditation/register', '-e', 'console.log("app ran")'], { env: { GMR_FORMAT: 'xml' } })
  const { code } = await child.exited
  t.equal(code, 1)
  t.equal(child.stderrText.trim(), "guru-meditation: environment variable GMR_FORMAT: must be 'text' or 'json', got \"xml\"")
  t.notMatch(child.stdoutText, /app ran/)
})

t.test('good options from the environment are taken', async t => {
  const dir = tmpDir(t)
  const err = await setupIn(t, '{}', { GMR_LOG_DIR: dir, GMR_SIGNAL: 'USR1', GMR_FORMAT: 'json', GMR_SECTION_TIMEOUT: '100', GMR_FILE_TRIGGER: path.join(dir, 'trig'), GMR_FILE_TRIGGER_INTERVAL: '0.5', GMR_TRACK_PROMISES: 'sites' })
  t.equal(err, null)
  t.ok(fs.existsSync(path.join(dir, 'trig')), 'trigger file created')
  const stat = fs.statSync(path.join(dir, 'trig'))
  t.equal(stat.mode & 0o777, 0o600, 'trigger file mode 0600')
})

t.test('relative paths are taken against the working directory', async t => {
  const dir = tmpDir(t)
  fs.mkdirSync(path.join(dir, 'logs'))
  const code = `
    const gmr = require(${JSON.stringify(ROOT)})
    gmr.setupAutorun('1.0', { logDir: 'logs', fileEventHandler: 'trigger', serviceName: 'rel' })
    console.log('ready')
    setInterval(() => {}, 1000)
  `
  const child = spawnNode(t, ['-e', code], { cwd: dir })
  await waitForOutput(child, /ready/)
  t.ok(fs.existsSync(path.join(dir, 'trigger')), 'the trigger file is made in the working directory')
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(path.join(dir, 'logs'), 1, 15000, child)
  t.match(path.basename(file), /^rel_gurumeditation_/)
})

// A trigger file on another file system than the application and its logDir
// (tmpfs /dev/shm against /tmp) is watched as well.
t.test('a trigger file on another device works', { skip: !fs.existsSync('/dev/shm') }, async t => {
  const logDir = tmpDir(t)
  const shmDir = fs.mkdtempSync('/dev/shm/gmr-test-')
  t.teardown(() => fs.rmSync(shmDir, { recursive: true, force: true }))
  t.not(fs.statSync(shmDir).dev, fs.statSync(logDir).dev, 'really another device')
  const trigger = path.join(shmDir, 'trigger')
  const code = `
    const gmr = require(${JSON.stringify(ROOT)})
    gmr.setupAutorun('1.0', { logDir: ${JSON.stringify(logDir)}, fileEventHandler: ${JSON.stringify(trigger)} })
    console.log('ready')
    setInterval(() => {}, 1000)
  `
  const child = spawnNode(t, ['-e', code])
  await waitForOutput(child, /ready/)
  await new Promise(resolve => setTimeout(resolve, 100))
  fs.utimesSync(trigger, new Date(), new Date())
  const [file] = await waitForReports(logDir, 1, 15000, child)
  t.match(readReport(file), new RegExp(`trigger\\s*=\\s*file ${trigger}`))
  await until('still alive', () => child.exitCode === null)
})

t.test('generateReport and writeReport check their format before capturing', async t => {
  const code = `
    const gmr = require(${JSON.stringify(ROOT)})
    const calls = [() => gmr.generateReport({ format: 'xml' }), () => gmr.writeReport({ format: 42 }), () => gmr.generateReport(null)]
    Promise.all(calls.map(c => c().then(() => null, e => ({ name: e.name, option: e.option, message: e.message }))))
      .then(r => console.log('RESULTS ' + JSON.stringify(r)))
  `
  const child = spawnNode(t, ['-e', code])
  const { code: exitCode } = await child.exited
  t.equal(exitCode, 0, child.stderrText)
  const [xml, num, nul] = JSON.parse(child.stdoutText.match(/RESULTS (.*)/)[1])
  t.same([xml.name, xml.option], ['GuruMeditationOptionError', 'option format'])
  t.match(xml.message, /'text' or 'json', got "xml"/)
  t.same([num.option, nul.option], ['option format', 'options'])
})
