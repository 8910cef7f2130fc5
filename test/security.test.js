'use strict'
// Security of the files a report passes through: report files are new files
// (mode 0600, O_EXCL, never through a symlink, even one planted at the very
// name a report will take), gmr's request files are private, and a service
// honours only requests its own user left in its own private directory.
const t = require('tap')
const { spawn, execFile } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, APP, spawnNode, waitForOutput, tmpDir, waitForReports, reportFiles, isAlive, until, readReport, runGmr } = require('./helpers')

const CLI = path.join(ROOT, 'dist', 'cli.js')
const NOBODY = 65534
const IS_ROOT = process.geteuid() === 0

const gmr = (args, timeoutMs) => runGmr(args, { timeoutMs })

/** oslo's timestamp for a time offset by `s` seconds from now. */
const stamp = s => new Date(Date.now() + s * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14)

t.test('a report file is new, mode 0600 under umask 0, complete, with no temporary file left', async t => {
  const dir = tmpDir(t)
  const code = `
    process.umask(0)
    require(${JSON.stringify(ROOT)}).setupAutorun('1.0', { logDir: ${JSON.stringify(dir)}, serviceName: 'modes' })
    console.log('ready'); setInterval(() => {}, 1000)
  `
  const child = spawnNode(t, ['-e', code])
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)
  const st = fs.lstatSync(file)
  t.ok(st.isFile(), 'a regular file')
  t.equal(st.mode & 0o777, 0o600, 'mode 0600')
  t.equal(st.nlink, 1, 'its temporary name is gone')
  t.same(fs.readdirSync(dir), [path.basename(file)], 'nothing else in logDir, hidden or not')
})

t.test('symlinks planted at the names the next reports will take are not followed', async t => {
  const dir = tmpDir(t)
  const logDir = path.join(dir, 'logs')
  fs.mkdirSync(logDir)
  const victim = path.join(dir, 'victim')
  fs.writeFileSync(victim, 'precious\n')
  const absent = path.join(dir, 'must-not-be-created')
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir, serviceName: 'planted', sectionTimeout: 200 }) } })
  await waitForOutput(child, /ready/)
  // Every name a report of the next 10 s could take first: to a file that
  // exists, and (the `_1` names) dangling, to one that does not.
  const planted = []
  for (let s = -1; s <= 10; s++) {
    const base = path.join(logDir, `planted_gurumeditation_${stamp(s)}`)
    if (planted.includes(base)) continue
    fs.symlinkSync(victim, base)
    fs.symlinkSync(absent, `${base}_1`)
    planted.push(base, `${base}_1`)
  }
  process.kill(child.pid, 'SIGUSR2')
  await until('a report next to the links', () => reportFiles(logDir).some(f => !fs.lstatSync(path.join(logDir, f)).isSymbolicLink()), 15000, child)
  const report = reportFiles(logDir).map(f => path.join(logDir, f)).find(f => !fs.lstatSync(f).isSymbolicLink())
  t.match(path.basename(report), /_2$/, 'it took the first free name')
  t.match(readReport(report), /End of Guru Meditation Report/)
  t.equal(fs.lstatSync(report).mode & 0o777, 0o600)
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the file a link points to is untouched')
  t.notOk(fs.existsSync(absent), 'a dangling link\'s target is not created')
  for (const p of planted) t.ok(fs.lstatSync(p).isSymbolicLink(), `${path.basename(p)} is still the planted link`)
  t.ok(isAlive(child.pid))
})

t.test('gmr leaves its request mode 0600 in a 0700 directory of its user', async t => {
  // Catches the signal with the library loaded but never set up: the
  // request stays while gmr waits, to be looked at.
  const child = spawnNode(t, ['-e', "require('./dist/native').loadAddon(); process.on('SIGUSR2', () => {}); setInterval(() => {}, 1000); console.log('up')"])
  await waitForOutput(child, /up/)
  const dir = `/tmp/guru-meditation-${process.geteuid()}`
  const request = path.join(dir, `${child.pid}.request`)
  const asking = gmr([String(child.pid), '--timeout', '2'])
  await until('the request', () => fs.existsSync(request))
  const st = fs.lstatSync(request)
  t.ok(st.isFile())
  t.equal(st.mode & 0o777, 0o600, 'request mode 0600')
  t.equal(st.uid, process.geteuid())
  t.equal(fs.lstatSync(dir).mode & 0o777, 0o700, 'directory mode 0700')
  t.match(fs.readFileSync(request, 'utf8'), new RegExp(`^out=${child.pid}\\.\\d+\\.[0-9a-f]+\\.report\\nformat=text\\ntimeout=2\\n$`))
  const r = await asking
  t.equal(r.code, 1)
  t.notOk(fs.existsSync(request), 'removed when gmr gives up')
})

t.test('gmr --out writes a new file only: an existing file or a symlink there is refused before asking', async t => {
  const dir = tmpDir(t)
  const logDir = path.join(dir, 'logs')
  fs.mkdirSync(logDir)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir, sectionTimeout: 200 }) } })
  await waitForOutput(child, /ready/)
  const victim = path.join(dir, 'victim')
  fs.writeFileSync(victim, 'precious\n')
  const link = path.join(dir, 'out-link')
  fs.symlinkSync(victim, link)
  for (const out of [link, victim]) {
    const r = await gmr([String(child.pid), '--out', out])
    t.equal(r.code, 1)
    t.match(r.stderr, /already exists.*--out writes a new file only/)
  }
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'untouched')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.same(reportFiles(logDir), [], 'the service was not asked')
  const fresh = path.join(dir, 'fresh.txt')
  const ok = await gmr([String(child.pid), '--out', fresh])
  t.equal(ok.code, 0, ok.stderr)
  t.equal(fs.lstatSync(fresh).mode & 0o777, 0o600)
})

t.test('gmr refuses a process of another user, before signalling it', async t => {
  const logDir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir, sectionTimeout: 200 }) } })
  await waitForOutput(child, /ready/)
  // As root, gmr runs as nobody against root's service; otherwise against
  // pid 1, which is root's.
  const [target, as] = IS_ROOT ? [child.pid, NOBODY] : [1, null]
  const r = await runGmr([String(target)], { as })
  t.equal(r.code, 1)
  t.equal(r.stderr, `gmr: process ${target} belongs to another user (uid 0); run gmr as that user\n`)
  t.same(reportFiles(logDir), [], 'the service was not asked')
  t.ok(isAlive(child.pid))
})

// The service runs as nobody, so that its attach directory
// (/tmp/guru-meditation-65534) is one this test alone uses and can give to
// another owner or open to others.
t.test('a service honours only requests of its own user, in its own private directory', { skip: !IS_ROOT && 'needs root, to run the service as nobody and chown its files' }, async t => {
  const home = fs.mkdtempSync('/tmp/gmr-nobody-')
  const logDir = path.join(home, 'logs')
  fs.mkdirSync(logDir)
  fs.chownSync(home, NOBODY, NOBODY)
  fs.chownSync(logDir, NOBODY, NOBODY)
  const attach = `/tmp/guru-meditation-${NOBODY}`
  fs.rmSync(attach, { recursive: true, force: true })
  t.teardown(() => { fs.rmSync(home, { recursive: true, force: true }); fs.rmSync(attach, { recursive: true, force: true }) })
  const { NODE_OPTIONS, ...env } = process.env
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, APP, 'programmatic', 'idle'], {
    cwd: ROOT, uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, GMR_TEST_OPTIONS: JSON.stringify({ logDir, sectionTimeout: 200, format: 'json' }) }
  })
  child.stdoutText = ''
  child.stderrText = ''
  child.stdout.on('data', d => { child.stdoutText += d })
  child.stderr.on('data', d => { child.stderrText += d })
  t.teardown(() => { try { process.kill(child.pid, 'SIGKILL') } catch {} })
  await waitForOutput(child, /ready/)

  const request = path.join(attach, `${child.pid}.request`)
  let n = 0
  let said = 0
  /** Leaves a request, signals, and says where the report went: 'requested' or 'logDir'. */
  async function ask (what, prepare, seen = true) {
    const name = `${child.pid}.1.${++n}.report`
    fs.writeFileSync(request, `out=${name}\nformat=json\n`, { mode: 0o600 })
    prepare()
    const before = reportFiles(logDir).length
    process.kill(child.pid, 'SIGUSR2')
    const where = await until(`the report (${what})`, () => {
      if (fs.existsSync(path.join(attach, name))) return 'requested'
      if (reportFiles(logDir).length > before) return 'logDir'
      return null
    }, 15000, child)
    try { fs.unlinkSync(request) } catch {}
    try { fs.unlinkSync(path.join(attach, name)) } catch {}
    // An ignored request the service can see is said on its stderr, once.
    if (seen) {
      said++
      await until(`the line for the ${what}`, () => child.stderrText.split(`ignoring the gmr request ${request}`).length - 1 === said, 15000, child)
    }
    t.equal(child.stderrText.split('ignoring the gmr request').length - 1, said, `${what}: ${seen ? 'said on stderr' : 'nothing said'}`)
    return where
  }

  fs.mkdirSync(attach, { mode: 0o700 }) // root's, not the service's
  // The service cannot look into root's directory: it says nothing of it.
  t.equal(await ask('directory of another user', () => {}, false), 'logDir', 'a directory owned by another user is not used')
  fs.chownSync(attach, NOBODY, NOBODY)
  fs.chmodSync(attach, 0o777)
  t.equal(await ask('world-writable directory', () => fs.chownSync(request, NOBODY, NOBODY)), 'logDir', 'a directory others can write is not used')
  fs.chmodSync(attach, 0o700)
  t.equal(await ask('request of another user', () => {}), 'logDir', 'a request file owned by another user (root) is ignored')
  t.equal(await ask('hard-linked request', () => {
    fs.chownSync(request, NOBODY, NOBODY)
    fs.linkSync(request, path.join(home, 'second-link'))
  }), 'logDir', 'a request with a second link is ignored')
  fs.rmSync(path.join(home, 'second-link'))
  t.equal(await ask('its own request', () => fs.chownSync(request, NOBODY, NOBODY), false), 'requested', 'its own request in its own private directory is honoured')
  t.ok(isAlive(child.pid))
})
