'use strict'
// `conf` is read as data: own data properties only, accessors and Proxies
// shown as such, never invoked. A report may be written from an interrupt of
// the busy main thread, in the middle of the application's own operation:
// no code of the application may run then, nor at setup, nor when idle.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { FIXTURES, mainThreadAsleep, spawnNode, tmpDir, until, waitForReports } = require('./helpers')

const APP = path.join(FIXTURES, 'conf-as-data.js')

const EXPECTED = {
  'plain.host': 'db.example.com',
  'plain.port': '5432',
  counted: '[getter]',
  throws: '[getter]',
  writeOnly: '[setter]',
  both: '[getter/setter]',
  password: '***',
  proxy: '[Proxy]',
  revoked: '[Proxy]',
  fnProxy: '[Proxy]',
  'service.host': 'svc.example.com',
  'service.port': '8443',
  'map.alpha': '1',
  'map.beta.deep': 'x',
  set: 'x, y',
  when: '2024-05-06T07:08:09.000Z',
  url: 'https://***@svc.example.com/path',
  re: '/a+b/gi',
  bytes: '<Uint8Array 4 bytes>',
  err: '[Error: went wrong]',
  list: 'a, b, [getter]',
  loudList: 'p, q',
  fn: '[Function]',
  boxed: 'boxed text',
  'inheritsProxy.own': 'mine'
}

for (const mode of ['idle', 'busy']) {
  t.test(`a getter- and Proxy-heavy conf, ${mode === 'idle' ? 'reported by the event loop' : 'reported from an interrupt of a busy main thread'}: listed as data, no call`, async t => {
    const dir = tmpDir(t)
    const child = spawnNode(t, [APP, dir, mode], { env: { GMR_FORMAT: 'json' }, stdin: 'pipe' })
    await until('ready', () => child.stdoutText.includes(mode === 'busy' ? 'busy' : 'ready'), 15000, child)
    if (mode === 'idle') await until('the main thread asleep in its loop', () => mainThreadAsleep(child.pid), 15000, child)
    process.kill(child.pid, 'SIGUSR2')
    const [file] = await waitForReports(dir, 1, 20000, child)
    const r = JSON.parse(fs.readFileSync(file, 'utf8'))
    t.match(r.package.writtenBy, mode === 'idle' ? /event loop/ : /interrupt/, 'written where this test means')
    t.same(r.configuration.application, EXPECTED, 'the configuration as data')
    if (mode === 'idle') child.stdin.write('tell\n')
    const line = await until('the count of calls', () => /calls (\[.*\])\n/.exec(child.stdoutText), 15000, child)
    t.same(JSON.parse(line[1]), [], 'the application saw no call into its configuration')
    t.notOk(/Hidden\d/.test(JSON.stringify(r)), 'no value from behind a getter or Proxy')
  })
}
