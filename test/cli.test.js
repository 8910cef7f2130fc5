'use strict'
// gmr <pid>: a real CLI process asks a real service for its report.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { spawn, execFile } = require('node:child_process')
const { ROOT, APP, SPIN_LINE, mainThread, mainThreadSpun, spawnNode, waitForOutput, tmpDir, reportFiles, isAlive, until, runGmr } = require('./helpers')

const CLI = path.join(ROOT, 'dist', 'cli.js')
const ATTACH_DIR = `/tmp/guru-meditation-${process.geteuid()}`

/** Runs gmr with args, killed if it outlives timeoutMs; resolves { code, stdout, stderr, ms }. */
const gmr = (args, timeoutMs) => runGmr(args, { timeoutMs })

const leftovers = pid => fs.existsSync(ATTACH_DIR) ? fs.readdirSync(ATTACH_DIR).filter(f => f.startsWith(`${pid}.`)) : []

t.test('gmr <pid> --json prints the report of a stuck service that writes its own reports to logDir', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'spin'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir }) } })
  await waitForOutput(child, /spinning/)
  await mainThreadSpun(child)
  const r = await gmr([String(child.pid), '--json'])
  t.equal(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout)
  t.equal(report.package.pid, child.pid)
  t.equal(report.package.trigger.kind, 'cli')
  t.equal(report.package.trigger.detail, 'SIGUSR2')
  t.equal(mainThread(report).javascript[0].function, 'spinForever', 'the stuck function')
  t.equal(mainThread(report).javascript[0].line, SPIN_LINE)
  t.same(reportFiles(dir), [], 'the report went to gmr, not to logDir')
  t.same(leftovers(child.pid), [], 'no request or report file left behind')
  t.ok(isAlive(child.pid))
})

t.test('gmr <pid> --out FILE writes the text view; the service wrote nothing to its stderr', async t => {
  const child = spawnNode(t, [APP, 'programmatic', 'idle'])
  await waitForOutput(child, /ready/)
  const out = path.join(tmpDir(t), 'report.txt')
  const r = await gmr([String(child.pid), '--out', out])
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, '')
  const text = fs.readFileSync(out, 'utf8')
  t.match(text, /^={72}\n====\s+Guru Meditation\s+====\n/)
  t.match(text, /^trigger = cli SIGUSR2$/m)
  t.match(text, /End of Guru Meditation Report/)
  t.equal(fs.statSync(out).mode & 0o777, 0o600)
  t.notMatch(child.stderrText, /Guru Meditation/, 'nothing on the service\'s stderr')
})

t.test('gmr --list lists this user\'s processes with the library loaded', async t => {
  const withLib = spawnNode(t, [APP, 'programmatic', 'idle'])
  const without = spawnNode(t, ['-e', 'setInterval(() => {}, 1000)'])
  await waitForOutput(withLib, /ready/)
  const r = await gmr(['--list'])
  t.equal(r.code, 0)
  t.match(r.stdout, new RegExp(`^\\s*${withLib.pid}\\s+.*app\\.js`, 'm'))
  t.notMatch(r.stdout, new RegExp(`^\\s*${without.pid}\\s`, 'm'))
})

t.test('gmr refuses, quickly and without a signal, what it cannot ask', async t => {
  const none = await gmr(['4194303'])
  t.equal(none.code, 1)
  t.match(none.stderr, /there is no process 4194303/)

  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.teardown(() => sleeper.kill('SIGKILL'))
  const notNode = await gmr([String(sleeper.pid)])
  t.equal(notNode.code, 1)
  t.match(notNode.stderr, /is not a Node\.js process with guru-meditation loaded/)

  const plain = spawnNode(t, ['-e', "setInterval(() => {}, 1000); console.log('up')"])
  await waitForOutput(plain, /up/)
  const noLib = await gmr([String(plain.pid)])
  t.equal(noLib.code, 1)
  t.match(noLib.stderr, /has not loaded guru-meditation/)

  const quiet = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ signal: 'none' }) } })
  await waitForOutput(quiet, /ready/)
  const noSignal = await gmr([String(quiet.pid)])
  t.equal(noSignal.code, 1)
  t.match(noSignal.stderr, /was set up without a report signal/)

  for (const r of [none, notNode, noLib, noSignal]) t.ok(r.ms < 5000, `answered in ${r.ms} ms`)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.ok(isAlive(sleeper.pid) && isAlive(plain.pid) && isAlive(quiet.pid), 'no process was signalled to death')

  const usage = await gmr([])
  t.equal(usage.code, 2)
  t.match(usage.stderr, /usage: gmr <pid>/)
  const badTimeout = await gmr(['1', '--timeout', 'soon'])
  t.equal(badTimeout.code, 2)
  t.match(badTimeout.stderr, /--timeout takes a number of seconds/)
})

t.test('gmr sends the report signal the process announces, never one Node takes itself', async t => {
  const usr1 = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ signal: 'SIGUSR1' }) } })
  const usr2 = spawnNode(t, [APP, 'programmatic', 'idle'])
  await waitForOutput(usr1, /ready/)
  await waitForOutput(usr2, /ready/)
  // A report written after its gmr gave up (that gmr is gone): removed.
  const orphan = path.join(ATTACH_DIR, `${usr1.pid}.4194303.00aa11.report`)
  fs.mkdirSync(ATTACH_DIR, { recursive: true, mode: 0o700 })
  fs.writeFileSync(orphan, 'nobody reads this', { mode: 0o600 })
  const found = await gmr([String(usr1.pid), '--json'])
  t.notOk(fs.existsSync(orphan), 'a report left by a gmr that gave up is removed')
  t.equal(found.code, 0, 'no --signal: the one the process reports on (SIGUSR1)')
  t.equal(JSON.parse(found.stdout).package.trigger.detail, 'SIGUSR1')
  for (const signal of ['SIGUSR1', 'SIGTERM', 'SIGINT']) {
    const wrong = await gmr([String(usr2.pid), '--signal', signal])
    t.equal(wrong.code, 1, `--signal ${signal} to a process reporting on SIGUSR2: refused`)
    t.match(wrong.stderr, new RegExp(`reports on SIGUSR2, not ${signal}`))
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  t.ok(isAlive(usr2.pid), 'not ended by a signal')
  t.notMatch(usr2.stderrText, /Debugger listening/, 'its inspector not opened')
})

t.test('a process that catches the signal but never answers: gmr gives up at its timeout and cleans up', async t => {
  // Catches SIGUSR2 in JavaScript, has the library loaded, but its setup never
  // ran: nobody reads the request.
  const child = spawnNode(t, ['-e', "require('./dist/native').loadAddon(); process.on('SIGUSR2', () => {}); setInterval(() => {}, 1000); console.log('up')"])
  await waitForOutput(child, /up/)
  const r = await gmr([String(child.pid), '--timeout', '1'])
  t.equal(r.code, 1)
  t.match(r.stderr, /no report from process \d+ within 1 s/)
  t.ok(r.ms < 4000, `gave up after ${r.ms} ms`)
  t.same(leftovers(child.pid), [], 'its request is removed')
  // Set up by no copy of the library: nothing announces its signal.
  const inspector = await gmr([String(child.pid), '--signal', 'SIGUSR1'])
  t.equal(inspector.code, 1)
  t.match(inspector.stderr, /SIGUSR1 is one Node takes itself \(it opens the inspector\)/)
  t.notMatch(child.stderrText, /Debugger listening/)
  t.ok(isAlive(child.pid))
})

t.test('the service honours only safe requests: a symlinked request or a path out of the directory is ignored', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], { env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json' }) } })
  await waitForOutput(child, /ready/)
  fs.mkdirSync(ATTACH_DIR, { recursive: true, mode: 0o700 })
  const request = path.join(ATTACH_DIR, `${child.pid}.request`)
  t.teardown(() => { try { fs.unlinkSync(request) } catch {} })
  const elsewhere = path.join(dir, 'planted-request')
  fs.writeFileSync(elsewhere, `out=${child.pid}.1.planted.report\n`)
  fs.symlinkSync(elsewhere, request)
  child.kill('SIGUSR2')
  const { waitForReports } = require('./helpers')
  await waitForReports(dir, 1, 15000, child)
  t.notOk(fs.existsSync(path.join(ATTACH_DIR, `${child.pid}.1.planted.report`)), 'a symlinked request is not followed')
  t.throws(() => fs.lstatSync(request), { code: 'ENOENT' }, 'the link was taken and dropped')
  const said = `guru-meditation: ignoring the gmr request ${request}: it is a symbolic link\n`
  t.ok(await until('the line on stderr', () => child.stderrText.includes(said), 15000, child), 'and said on stderr')

  fs.writeFileSync(request, `out=../${child.pid}.escape.report\n`, { mode: 0o600 })
  await new Promise(resolve => setTimeout(resolve, 200))
  child.kill('SIGUSR2')
  await waitForReports(dir, 2, 15000, child)
  t.notOk(fs.existsSync(`/tmp/${child.pid}.escape.report`), 'no report out of the attach directory')
  t.notOk(fs.existsSync(request), 'the bad request was taken and dropped')
})
