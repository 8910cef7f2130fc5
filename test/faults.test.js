'use strict'
// Faults while reporting: a logDir that is removed, made read-only or full,
// stderr gone, and user sections that misbehave. The report still comes
// (to stderr, after one warning), no partial file is left visible, the
// process keeps running, and a bad section costs only itself.
const t = require('tap')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { APP, FIXTURES, spawnNode, waitForOutput, tmpDir, waitForReports, waitForTextReport, isAlive, until, readReport, runGmr, reportFiles, descendants } = require('./helpers')

const IS_ROOT = process.getuid() === 0

/** A directory with a tiny tmpfs mounted on it, or null when mounting is not allowed. */
function tmpfs (t, size) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-mnt-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'ignore' })
  } catch {
    fs.rmdirSync(dir)
    return null
  }
  // Unmounted before it is removed: rm must not walk a read-only mount.
  t.teardown(() => {
    try { execFileSync('umount', [dir], { stdio: 'ignore' }) } catch { try { execFileSync('umount', ['-l', dir], { stdio: 'ignore' }) } catch {} }
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

/** Every name in dir, hidden ones included: a partial report would be one. */
function names (dir) {
  return fs.readdirSync(dir).sort()
}

async function fallsBackToStderr (t, child, dir, why) {
  process.kill(child.pid, 'SIGUSR2')
  const text = await waitForTextReport(child)
  t.match(text, /====\s+Configuration\s+====/, 'the whole report, on stderr')
  const warnings = child.stderrText.match(/guru-meditation: cannot write the report to [^\n]*/g) || []
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0], why, 'saying why')
  t.match(warnings[0], /writing it to stderr instead/)
  t.ok(isAlive(child.pid), 'the process keeps running')
}

t.test('the working directory deleted (a deploy removed the release): the whole report still comes', async t => {
  const logDir = tmpDir(t)
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-release-'))
  t.teardown(() => fs.rmSync(cwd, { recursive: true, force: true }))
  const code = `
    require(${JSON.stringify(path.join(__dirname, '..'))}).setupAutorun({ product: 'p', vendor: 'v', version: '1' }, { logDir: ${JSON.stringify(logDir)}, format: 'json' })
    require('node:fs').rmdirSync(process.cwd())
    console.log('ready')
    require('node:child_process').execFileSync('sleep', ['3'])  // blocked: a reporter environment writes it
  `
  const child = spawnNode(t, ['-e', code], { cwd })
  await waitForOutput(child, /ready/)
  await until('the main thread in execFileSync', () => descendants(child.pid).length > 0, 15000, child)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(logDir, 1, 15000, child)
  const report = readReport(file)
  t.equal(report.package.cwd, `${cwd} (deleted)`, 'the directory as /proc names it')
  t.match(report.package.writtenBy, /^reporter environment/)
  t.same(report.errors.filter(e => /ENOENT|cwd|could not/.test(e)), [], 'no section lost')
  t.ok(report.processes.length > 0 && report.greenThreads.threads.length > 0, 'the sections beyond the threads are there')
  t.notMatch(child.stderrText, /ENOENT|uv_cwd/, 'nothing on stderr about it')
})

t.test('the event loop stuck while its report awaits a section: a reporter environment writes it, once', async t => {
  // The loop takes the report and awaits the section (300 ms), which has
  // another callback spin for 6 s from 50 ms on, where no timer of the loop
  // fires. The watchdog takes the report back after sectionTimeout + 2 s.
  const logDir = tmpDir(t)
  const code = `
    const gmr = require(${JSON.stringify(path.join(__dirname, '..'))})
    gmr.setupAutorun({ product: 'p', vendor: 'v', version: '1' }, { logDir: ${JSON.stringify(logDir)}, format: 'json', sectionTimeout: 200 })
    const spin = () => { console.log('spinning'); const end = Date.now() + 6000; while (Date.now() < end); console.log('free') }
    gmr.registerSection('slow', () => { setTimeout(spin, 50); return new Promise(resolve => setTimeout(() => resolve('late'), 300)) })
    console.log('ready')
    setInterval(() => {}, 1000)
  `
  const child = spawnNode(t, ['-e', code])
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  await waitForOutput(child, /spinning/)
  const spunAt = Date.now()
  const [file] = await waitForReports(logDir, 1, 10000, child)
  t.ok(!/free/.test(child.stdoutText), `the report came while the loop was stuck (${Date.now() - spunAt} ms into it)`)
  const report = readReport(file)
  t.equal(report.package.writtenBy, 'reporter environment (the main thread could not write it)')
  t.match(report.errors.join('\n'), /did not finish it within 2200 ms \(its event loop got stuck while it waited for the sections\)/)
  await waitForOutput(child, /free/, 'stdoutText', 15000)
  await new Promise(resolve => setTimeout(resolve, 1000))
  t.equal(reportFiles(logDir).length, 1, 'one report for the one signal: the main thread did not write it too')
  t.ok(isAlive(child.pid))
})

t.test('logDir removed after setup: the report goes to stderr, one warning', async t => {
  const dir = tmpDir(t)
  const logDir = path.join(dir, 'logs')
  fs.mkdirSync(logDir)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir, sectionTimeout: 200 }) } })
  await waitForOutput(child, /ready/)
  fs.rmSync(logDir, { recursive: true })
  await fallsBackToStderr(t, child, logDir, /ENOENT/)
  t.notOk(fs.existsSync(logDir), 'nothing made in its place')
})

t.test('logDir made read-only after setup', async t => {
  let logDir = tmpfs(t, '1m')
  let how = 'a tmpfs remounted read-only'
  if (!logDir && !IS_ROOT) {
    logDir = tmpDir(t)
    how = 'chmod 0555 (not root, mount not allowed)'
  }
  if (!logDir) return t.skip('needs mount (root without CAP_SYS_ADMIN ignores permissions)')
  t.comment(`read-only by ${how}`)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir, sectionTimeout: 200 }) } })
  await waitForOutput(child, /ready/)
  if (how.startsWith('chmod')) fs.chmodSync(logDir, 0o555)
  else execFileSync('mount', ['-o', 'remount,ro', logDir])
  await fallsBackToStderr(t, child, logDir, /EROFS|EACCES/)
  t.same(names(logDir), [], 'no file, partial or hidden, in logDir')
})

t.test('logDir full: no partial file, the report on stderr, then in logDir again once there is room', async t => {
  const logDir = tmpfs(t, '64k')
  if (!logDir) return t.skip('needs mount -t tmpfs (a size-limited file system)')
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir, sectionTimeout: 200, serviceName: 'full' }) } })
  await waitForOutput(child, /ready/)
  // Fill it up.
  const filler = path.join(logDir, 'filler')
  const fd = fs.openSync(filler, 'w')
  const chunk = Buffer.alloc(4096, 120)
  try { for (;;) fs.writeSync(fd, chunk) } catch (err) { t.equal(err.code, 'ENOSPC', 'the file system is full') } finally { fs.closeSync(fd) }
  await fallsBackToStderr(t, child, logDir, /ENOSPC/)
  t.same(names(logDir), ['filler'], 'no partial report, visible or hidden')
  fs.unlinkSync(filler)
  const before = child.stderrText.length
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(logDir, 1, 15000, child)
  t.match(readReport(file), /End of Guru Meditation Report/, 'complete once there is room')
  t.notMatch(child.stderrText.slice(before), /cannot write the report/, 'no warning then')
})

t.test('stderr closed by its reader: a report to stderr costs the process nothing', async t => {
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ sectionTimeout: 200 }) } })
  await waitForOutput(child, /ready/)
  child.stderr.destroy()
  // Each report into the closed pipe, then gmr's: it comes only once the
  // one before is done (one report at a time), so the reporter is free again.
  for (let i = 1; i <= 2; i++) {
    process.kill(child.pid, 'SIGUSR2')
    const r = await runGmr([String(child.pid), '--json'])
    t.equal(r.code, 0, `after report ${i} into the closed pipe, gmr gets its own: ${r.stderr}`)
    t.equal(JSON.parse(r.stdout).package.trigger.kind, 'cli')
  }
  t.ok(isAlive(child.pid), 'still running after two reports into a closed pipe')
})

const EXPECTED = {
  'A Good One': { content: { orders: 3 } },
  Throws: { error: /^the generator threw: section boom$/ },
  'Throws Oddly': { error: /^the generator threw: \[object Object\]$/ },
  Cyclic: { content: { name: 'loop', self: '[Circular]' } },
  BigInt: { content: { big: '1180591620717411303424' } },
  'Throwing Getter': { content: { ok: 1, broken: '[getter threw: getter exploded]' } },
  'Leaky Error': { error: /^the generator threw: cannot connect to postgres:\/\/\*\*\*@db:5432\/x$/ },
  'Z Last Good One': { content: 'still here' }
}

for (const mode of ['idle', 'spin']) {
  t.test(`misbehaving sections are bounded and said inline, the others intact (${mode === 'idle' ? 'event loop' : 'main thread busy in JavaScript'})`, async t => {
    const dir = tmpDir(t)
    const child = spawnNode(t, [path.join(FIXTURES, 'hostile-sections.js'), dir, mode])
    await waitForOutput(child, mode === 'spin' ? /spinning/ : /ready/)
    process.kill(child.pid, 'SIGUSR2')
    const [file] = await waitForReports(dir, 1, 20000, child)
    const size = fs.statSync(file).size
    const report = readReport(file)
    t.ok(size < 2 * 1024 * 1024, `the report stays small: ${size} bytes`)
    const sections = Object.fromEntries(report.sections.map(s => [s.name, s]))
    t.equal(report.sections.length, 13, 'every section is there')
    for (const [name, want] of Object.entries(EXPECTED)) {
      if (want.content !== undefined) t.same(sections[name].content, want.content, `${name}: its content`)
      else t.match(sections[name].error, want.error, `${name}: ${sections[name].error}`)
    }
    t.notOk(JSON.stringify(report).includes('SectionErrSecret'), 'a secret in an error message is masked')
    const huge = sections['Huge String'].content
    t.ok(huge.length < 300 * 1024 && /… \(\d+ more characters\)$/.test(huge), 'a huge string is cut, saying so')
    t.match(sections['Huge Object'].content, /^\[value too large: \d+ characters of JSON, limit 262144\]$/)
    if (mode === 'idle') {
      t.match(sections.Rejects.error, /^the generator threw: rejected boom$/)
      t.equal(sections['Never Settles'].error, 'timed out after 300 ms')
      t.equal(sections.Slow.error, 'timed out after 300 ms')
      t.match(report.package.writtenBy, /event loop/)
    } else {
      for (const name of ['Rejects', 'Never Settles', 'Slow']) t.match(sections[name].error, /busy running JavaScript.*a promise cannot be waited for/, `${name}: not waited for`)
      t.match(report.package.writtenBy, /interrupt/)
    }
    t.ok(isAlive(child.pid), 'the process keeps running')
  })
}
