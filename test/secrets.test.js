'use strict'
// The secrets corpus (test/fixtures/secrets-corpus.json) in a real process:
// its configuration, command line, execArgv, NODE_OPTIONS, environment, a
// child's command line and user sections (text, content, error); a real
// signal; the report file in both views, written by the event loop and by
// the reporter environment (main thread blocked). No secret anywhere in it;
// hosts, paths and plain values kept.
const t = require('tap')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { FIXTURES, ROOT, tmpDir, waitForReports, until, spawnNode, waitForOutput, validateReport } = require('./helpers')
const corpus = require('./fixtures/secrets-corpus.json')

const APP = path.join(FIXTURES, 'secrets-app.js')

// As helpers.spawnNode, but with NODE_OPTIONS set for the service itself
// (env(1) drops the test runner's and sets ours, then execs node).
function spawnService (t, args, env) {
  const { NODE_OPTIONS, ...inherited } = process.env
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', `NODE_OPTIONS=${corpus.nodeOptions}`, process.execPath, ...corpus.execArgv, ...args], {
    cwd: ROOT, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdoutText = ''
  child.stderrText = ''
  child.stdout.on('data', d => { child.stdoutText += d })
  child.stderr.on('data', d => { child.stderrText += d })
  t.teardown(() => {
    for (const pid of childrenOf(child.pid)) { try { process.kill(pid, 'SIGKILL') } catch {} }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

function childrenOf (pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).flatMap(tid =>
      fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number))
      .flatMap(c => [c, ...childrenOf(c)])
  } catch { return [] }
}

for (const mode of ['idle', 'blocked']) {
  for (const format of ['text', 'json']) {
    t.test(`${format} view, ${mode === 'idle' ? 'written by the event loop' : 'written by the reporter environment'}: no secret, hosts and paths kept`, async t => {
      const dir = tmpDir(t)
      const child = spawnService(t, [APP, dir, mode, ...corpus.argv], { ...corpus.env, GMR_FORMAT: format })
      await until('ready', () => child.stdoutText.includes(mode === 'blocked' ? 'blocking' : 'ready'), 15000, child)
      t.match(child.stdoutText, /node-options-ran/, 'NODE_OPTIONS was really in force')
      t.match(child.stdoutText, /exec-argv-ran/, 'execArgv was really in force')
      if (mode === 'blocked') await until('blocked in sleep', () => childrenOf(child.pid).length > 0, 15000, child)
      process.kill(child.pid, 'SIGUSR2')
      const [file] = await waitForReports(dir, 1, 20000, child)
      const out = fs.readFileSync(file, 'utf8') // validated by waitForReports
      t.match(out, /End of Guru Meditation Report|"schema": 2/, 'a complete report')
      const leaked = corpus.secrets.filter(s => out.includes(s))
      t.same(leaked, [], 'no secret appears')
      const lost = corpus.kept.filter(k => !out.includes(format === 'json' ? JSON.stringify(k).slice(1, -1) : k))
      t.same(lost, [], 'hosts, paths and plain values are kept')
      if (format === 'json') {
        const r = JSON.parse(out)
        const app = r.configuration.application
        t.equal(app['database.url'], 'postgres://***@db.internal.example.com:5432/orders?sslmode=require')
        t.equal(app['cache.redis'], 'redis://***@cache.example.com:6379/0')
        t.equal(app['http.headers.Authorization'], '***')
        t.equal(app['http.headers.Accept'], 'application/json')
        t.equal(app['database.mssql'], 'Server=tcp:sql.example.com,1433;Database=app;User ID=sa;Password=***;Encrypt=True;')
        t.equal(app['cli.args'], '--db-password, ***, --api-token=***, --verbose')
        // Decided on the whole path: a generic leaf under a service or a credential group.
        t.equal(app['stripe.key'], '***')
        t.equal(app['api.key'], '***')
        t.equal(app['api.url'], 'https://api.example.com/v2')
        t.equal(app['encryption.key'], '***')
        t.equal(app['encryption.algorithm'], 'aes-256-gcm')
        t.equal(app['proxy.headers[0].value'], '***', 'the value of a header named like a secret')
        t.equal(app['proxy.headers[1].value'], 'en-GB')
        // And on the value: token shapes whatever the key.
        t.equal(app['notes.deploy'], 'published with ***')
        t.equal(app['notes.hook'], '***')
        t.equal(app['notes.release'], 'v4.2.0')
        t.equal(app['tls.bundle'], '-----BEGIN CERTIFICATE-----\nMIIBsecondPublicCert\n-----END CERTIFICATE-----\n***')
        const rt = r.configuration.runtime
        t.equal(rt['env.NODE_OPTIONS'], "--max-old-space-size=512 --import=data:text/javascript,globalThis.API_TOKEN='***';globalThis.GL='***'")
        t.same(r.package.execArgv, ["--import=data:text/javascript,globalThis.STRIPE='***'"])
        t.match(rt['env.(values hidden)'], /\bDATABASE_PASSWORD\b/, 'other variables by name only')
        t.same(r.package.argv.slice(-8, -6), ['--tenantcode', '***'], "by the application's secretKeys")
        t.same(r.package.argv.slice(-6), ['--db-url', 'postgres://***@orders-db.example.com:5432/orders', '--api-token', '***', '--password=***', '--verbose'])
        t.match(r.package.writtenBy, mode === 'idle' ? /event loop/ : /reporter environment/)
        const me = (function find (list) {
          for (const p of list) { if (p.pid === child.pid) return p; const c = find(p.children || []); if (c) return c }
          return null
        })(r.processes)
        t.ok(me, 'the service is in the process tree')
        t.match(me.command, /--db-url postgres:\/\/\*\*\*@orders-db/, 'its command line is masked too')
        const childCommand = 'mysql -e setInterval(() => {}, 1000) -- -h mysql.example.com -u app -p*** --auth-token *** --merchant-id *** orders'
        t.ok(me.children.some(c => c.command === childCommand), `a child's command line is masked: ${JSON.stringify(me.children.map(c => c.command))}`)
        const handles = r.greenThreads.threads.flatMap(g => g.handles).filter(h => h.type === 'process')
        t.ok(handles.some(h => h.description.endsWith(`: ${childCommand}`)), `and so is its green thread: ${JSON.stringify(handles.map(h => h.description))}`)
        const sections = Object.fromEntries(r.sections.map(s => [s.name, s]))
        if (mode === 'idle') {
          t.equal(sections.Deploy.content, 'published by CI with *** to the registry', "token shapes in a section's text")
          t.same(sections.Billing.content, { stripe: { key: '***' }, plan: 'team-orders' }, "secret paths in a section's content")
          t.equal(sections.Upstream.error, 'the generator threw: upstream refused key ***', "a section's error message")
        } else {
          t.same(Object.keys(sections).sort(), ['Billing', 'Deploy', 'Upstream'], 'sections unavailable, listed by name')
        }
      } else {
        t.match(out, /database\.url = postgres:\/\/\*\*\*@db\.internal\.example\.com:5432\/orders\?sslmode=require/)
        t.match(out, /env\.NODE_OPTIONS = --max-old-space-size=512/)
      }
    })
  }
}

t.test('maskSectionText off (GMR_MASK_SECTION_TEXT=0): sections\' strings as given, secret paths and errors still masked', async t => {
  const dir = tmpDir(t)
  const child = spawnService(t, [APP, dir, 'idle', ...corpus.argv], { ...corpus.env, GMR_FORMAT: 'json', GMR_MASK_SECTION_TEXT: '0' })
  await until('ready', () => child.stdoutText.includes('ready'), 15000, child)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 20000, child)
  const r = JSON.parse(fs.readFileSync(file, 'utf8'))
  const sections = Object.fromEntries(r.sections.map(s => [s.name, s]))
  t.equal(sections.Deploy.content, 'published by CI with npm_SectionTextToken65abcdefghijklmnopqrst to the registry', 'the text as the application wrote it')
  t.same(sections.Billing.content, { stripe: { key: '***' }, plan: 'team-orders' }, 'a secret path is still masked')
  t.equal(sections.Upstream.error, 'the generator threw: upstream refused key ***', 'and so is an error message')
  t.equal(r.configuration.application['notes.hook'], '***', 'the rest of the report is masked as usual')
})

t.test('a report asked on a worker masks by the main thread\'s secretKeys and goes to its logDir', async t => {
  const logDir = tmpDir(t)
  const lib = JSON.stringify(require('node:path').join(__dirname, '..'))
  const code = `
    const { Worker } = require('node:worker_threads')
    require(${lib}).setupAutorun({ product: 'p', vendor: 'v', version: '1' }, { logDir: ${JSON.stringify(logDir)}, secretKeys: ['flavour'], conf: { flavour: ['van', 'illa'].join(''), port: 8080 } })
    new Worker(\`
      const gmr = require(${lib})
      Promise.all([gmr.generateReport({ format: 'json' }), gmr.writeReport({ format: 'json' })])
        .then(([json, file]) => require('node:worker_threads').parentPort.postMessage({ json, file }))
    \`, { eval: true }).on('message', m => { console.log(JSON.stringify(m)); process.exit(0) })
  `
  const child = spawnNode(t, ['-e', code, '--', '--flavour=vanilla'])
  const line = await waitForOutput(child, /^\{.*\}$/m, 'stdoutText', 20000)
  const { json, file } = JSON.parse(line[0])
  const report = validateReport(json).json
  t.notMatch(json, /vanilla/, 'the secret appears nowhere in it')
  t.match(JSON.stringify(report.processes), /--flavour=\*\*\*/, 'masked in the command line')
  t.equal(report.configuration.application.port, '8080', 'the main thread\'s configuration, as of its setup')
  t.equal(require('node:path').dirname(file), logDir, 'written where reports go')
  t.notMatch(fs.readFileSync(file, 'utf8'), /vanilla/)
})

