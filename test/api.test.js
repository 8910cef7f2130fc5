'use strict'
// generateReport and writeReport from code, CommonJS and ESM, with secrets
// in the configuration masked in both views.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, spawnNode, tmpDir, REPORT_NAME, readReport, validateReportContent } = require('./helpers')

const SECRETS = ['hunter2-db-pass', 'tok_live_9f8e7d', 'AKIAABCDEFGHIJKLMNOP', 'MIIEvQIBADANBgkqhkiG9w0B', 'pw-nested-42', 'custom-secret-77', 'argv-secret-55']
const CONF = `{
  database: { connection: 'postgres://app:hunter2-db-pass@db.internal:5432/orders', pool: 5 },
  api: { token: 'tok_live_9f8e7d', url: 'https://api.example.com/v1' },
  aws: { accessKeyId: 'AKIAABCDEFGHIJKLMNOP', region: 'eu-west-1' },
  tls: { cert: '-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0B\\n-----END PRIVATE KEY-----' },
  deep: { a: { b: { c: { credentials: { password: 'pw-nested-42' } } } } },
  billing: { merchantCode: 'custom-secret-77' },
  plain: { retries: 3 }
}`

function app (format) {
  return `
    const gmr = require(${JSON.stringify(ROOT)})
    gmr.setupAutorun({ name: 'api-app', version: '2.0.0' }, { conf: ${CONF}, secretKeys: ['merchantCode'], signal: false })
    gmr.registerSection('Inventory', async () => ({ items: 42 }))
    function reportFromHere () { return gmr.generateReport({ format: '${format}' }) }
    reportFromHere().then(r => { process.stdout.write(r); process.exit(0) })
  `
}

for (const format of ['text', 'json']) {
  t.test(`generateReport (${format}) masks secrets at any depth`, async t => {
    // From a file: code given with -e would show its secrets in the command line.
    const file = path.join(tmpDir(t), 'app.js')
    fs.writeFileSync(file, app(format))
    const child = spawnNode(t, [file, '--api-password=argv-secret-55'])
    const { code } = await child.exited
    t.equal(code, 0, child.stderrText)
    const out = child.stdoutText
    validateReportContent(out, `generateReport (${format})`)
    for (const secret of SECRETS) t.notOk(out.includes(secret), `${secret} does not appear`)
    t.match(out, /db\.internal:5432\/orders/, 'URL keeps host and path')
    if (format === 'json') {
      const report = JSON.parse(out)
      t.equal(report.configuration.application['plain.retries'], '3')
      t.equal(report.configuration.application['deep.a.b.c.credentials'], '***')
      t.equal(report.configuration.application['billing.merchantCode'], '***')
      t.same(report.sections.find(s => s.name === 'Inventory').content, { items: 42 })
      t.equal(report.package.product, 'api-app')
      t.equal(report.package.trigger.kind, 'api')
      const main = report.threads.find(th => th.kind === 'main')
      t.equal(main.javascript[0].function, 'reportFromHere', "the caller's own frame, not the library's")
    } else {
      t.match(out, /plain\.retries = 3/)
      t.match(out, /====\s+Inventory\s+====/)
    }
  })
}

t.test('writeReport writes where a triggered report goes and returns the path', async t => {
  const dir = tmpDir(t)
  const code = `
    const gmr = require(${JSON.stringify(ROOT)})
    gmr.setupAutorun('3.1', { logDir: ${JSON.stringify(dir)}, serviceName: 'writer', signal: 'none' })
    gmr.writeReport().then(p => { console.log('PATH ' + p); process.exit(0) })
  `
  const child = spawnNode(t, ['-e', code])
  await child.exited
  const file = child.stdoutText.match(/PATH (.*)/)[1]
  t.equal(path.dirname(file), dir)
  t.match(path.basename(file), REPORT_NAME)
  t.match(readReport(file), /Guru Meditation/)
})

t.test('ESM: import and --import guru-meditation/register', async t => {
  const dir = tmpDir(t)
  const esm = path.join(dir, 'app.mjs')
  fs.writeFileSync(esm, `
    import { generateReport, TextGuruMeditation } from ${JSON.stringify(path.join(ROOT, 'dist', 'index.mjs'))}
    if (typeof TextGuruMeditation.setupAutorun !== 'function') throw new Error('no setupAutorun')
    const report = JSON.parse(await generateReport({ format: 'json' }))
    console.log('THREADS ' + report.threads.length)
    process.exit(0)
  `)
  const child = spawnNode(t, ['--import', 'guru-meditation/register', esm], { env: { GMR_SIGNAL: 'none' } })
  const { code } = await child.exited
  t.equal(code, 0, child.stderrText)
  t.match(child.stdoutText, /THREADS \d+/)
})
