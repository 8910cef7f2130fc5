'use strict'
// Configuration flattening and masking: the secrets of a realistic conf
// never reach the listing, and hostile objects still give bounded output.
// The masking rules themselves: test/redact.test.js.
const t = require('tap')
const { flattenConfig, runtimeConfig } = require('../dist/sections/configuration')
const { isSecretKey, maskText } = require('../dist/redact')

const PEM = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEAtopsecretpemline1',
  'bW9yZXNlY3JldHBlbWxpbmUy',
  '-----END RSA PRIVATE KEY-----'
].join('\n')

// Every value here must disappear from the flattened output.
const SECRETS = [
  'pgS3cretPw', 'eyJhbGciOiJIUzI1NiJ9.bearerTokenValue', 'AKIAIOSFODNN7EXAMPLE',
  'topsecretpemline1', 'bW9yZXNlY3JldHBlbWxpbmUy', 'nestedDbPassw0rd', 'Basic dXNlcjpodW50ZXIy',
  'dXNlcjpodW50ZXIy', 'customInternalValue', 'regexMatchedValue', 'sessionCookieValue',
  'queryTokenValue', 'cliPasswordValue'
]

function corpus () {
  return {
    database: {
      connection: 'postgresql://nova:pgS3cretPw@db.example.com:5432/nova?sslmode=require',
      max_pool_size: 10
    },
    db: { credentials: { password: 'nestedDbPassw0rd', user: 'nova' } },
    keystone: { headers: { Authorization: 'Basic dXNlcjpodW50ZXIy' } },
    upstream: { note: 'call with Bearer eyJhbGciOiJIUzI1NiJ9.bearerTokenValue please' },
    aws: { region: 'eu-west-1', key_id_in_text: 'key is AKIAIOSFODNN7EXAMPLE for now' },
    tls: { cert_and_key: `-----BEGIN CERTIFICATE-----\nMIIBpublic\n-----END CERTIFICATE-----\n${PEM}` },
    internal: { myCustomField: 'customInternalValue', x_hidden_y: 'regexMatchedValue' },
    web: { cookie_secret: 'sessionCookieValue', callback: 'https://app.example.com/cb?access_token=queryTokenValue&x=1' },
    cli: { args: ['--verbose', '--db-password=cliPasswordValue'] }
  }
}

t.test('isSecretKey', async (t) => {
  for (const key of ['password', 'DB_PASSWORD', 'passwd', 'pwd', 'db_pass', 'client_secret', 'authToken',
    'api key', 'api_key', 'apikey', 'api-key', 'apiKey', 'private key', 'privateKey', 'credentials',
    'credential', 'auth', 'Authorization', 'x-auth-token', 'basicAuth', 'Cookie', 'sessionId', 'passphrase']) {
    t.ok(isSecretKey(key, []), `${key} is secret`)
  }
  for (const key of ['username', 'host', 'port', 'NODE_TLS_REJECT_UNAUTHORIZED', 'bypass', 'compass', 'cwd', 'timeout']) {
    t.notOk(isSecretKey(key, []), `${key} is not secret`)
  }
  t.ok(isSecretKey('myCUSTOMfield', ['customfield']), 'extra string: case-insensitive substring')
  const re = /^x_.*_y$/g
  t.ok(isSecretKey('x_hidden_y', [re]), 'extra RegExp')
  t.ok(isSecretKey('x_hidden_y', [re]), 'a /g RegExp gives the same answer twice')
  t.notOk(isSecretKey('x_hidden_z', [re, 'nothing']))
  t.notOk(isSecretKey('anything', ['']), 'an empty extra string matches nothing')
})

t.test('maskText', async (t) => {
  const cases = [
    ['postgresql://nova:pgS3cretPw@db.example.com:5432/nova', 'postgresql://***@db.example.com:5432/nova'],
    ['redis://:p@ss@cache:6379/0', 'redis://***@cache:6379/0'],
    ['jdbc:mysql://root:pw@h/db', 'jdbc:mysql://***@h/db'],
    ['Authorization: Bearer abc.def-ghi==', 'Authorization: ***'],
    ['use Bearer abc.def please', 'use Bearer *** please'],
    ['key AKIAIOSFODNN7EXAMPLE here', 'key *** here'],
    [`before\n${PEM}\nafter`, 'before\n***\nafter'],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\ncut off here', '***'],
    ['password=hunter2 user=nova', 'password=*** user=nova'],
    ['{"token": "abc", "user": "u"}', '{"token": "***", "user": "u"}'],
    ['https://h/cb?access_token=abc&x=1', 'https://h/cb?access_token=***&x=1'],
    ['Server=db;User Id=sa;Password=Pa55;', 'Server=db;User Id=sa;Password=***;'],
    ['node app.js --db-password hunter2 --auth-required --verbose', 'node app.js --db-password *** --auth-required --verbose'],
    ["conf={credentials:{password:'pw1'}}", "conf={credentials:{password:'***'}}"],
    // Left alone: no secret in them.
    ['https://auth.example.com:8443/login', 'https://auth.example.com:8443/login'],
    ['node --require ./auth.js server.js', 'node --require ./auth.js server.js'],
    ['NODE_TLS_REJECT_UNAUTHORIZED=0', 'NODE_TLS_REJECT_UNAUTHORIZED=0'],
    ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----']
  ]
  for (const [input, want] of cases) t.equal(maskText(input), want, JSON.stringify(input))
})

t.test('maskText stays fast on pathological input', async (t) => {
  const start = Date.now()
  for (const s of ['password-'.repeat(1e5), 'a.'.repeat(5e5), 'http://'.repeat(1e5), 'token="'.repeat(1e5)]) {
    maskText(s)
  }
  t.ok(Date.now() - start < 5000, `took ${Date.now() - start} ms`)
})

t.test('flattenConfig: realistic corpus', async (t) => {
  const flat = flattenConfig(corpus(), ['customfield', /^x_.*_y$/])
  t.equal(flat['database.connection'], 'postgresql://***@db.example.com:5432/nova?sslmode=require')
  t.equal(flat['database.max_pool_size'], '10')
  t.equal(flat['db.credentials'], '***', 'a secret key masks its whole subtree')
  t.equal(flat['keystone.headers.Authorization'], '***')
  t.equal(flat['upstream.note'], 'call with Bearer *** please')
  t.equal(flat['aws.region'], 'eu-west-1')
  t.equal(flat['aws.key_id_in_text'], 'key is *** for now')
  t.equal(flat['tls.cert_and_key'], '-----BEGIN CERTIFICATE-----\nMIIBpublic\n-----END CERTIFICATE-----\n***')
  t.equal(flat['internal.myCustomField'], '***', 'custom string key')
  t.equal(flat['internal.x_hidden_y'], '***', 'custom RegExp key')
  t.equal(flat['web.cookie_secret'], '***')
  t.equal(flat['web.callback'], 'https://app.example.com/cb?access_token=***&x=1')
  t.equal(flat['cli.args'], '--verbose, --db-password=***', 'arrays of primitives are comma lists, items masked')
  const all = JSON.stringify(flat)
  for (const secret of SECRETS) t.notOk(all.includes(secret), `${secret} appears nowhere`)
})

t.test('flattenConfig: secretKeys RegExp may match the whole path', async (t) => {
  const flat = flattenConfig({ db: { user: 'nova', host: 'h' } }, [/^db\.user$/])
  t.same(flat, { 'db.user': '***', 'db.host': 'h' })
})

t.test('flattenConfig: conventions', async (t) => {
  const when = new Date('2024-05-06T07:08:09.000Z')
  const sym = Symbol('tag')
  const flat = flattenConfig({
    servers: [{ host: 'a', port: 1 }, { host: 'b', port: 2 }],
    hosts: ['a', 'b', 3, true, null],
    empty: [],
    none: {},
    when,
    bad_date: new Date(NaN),
    big: 12345678901234567890n,
    symValue: sym,
    [sym]: 'symbol key',
    fn: function handler () {},
    arrow: () => {},
    map: new Map([['alpha', 1], [2, { deep: 'x' }], [{}, 'object key']]),
    set: new Set(['x', 'y']),
    buf: Buffer.from('do not print me'),
    bytes: new Uint8Array(16),
    ab: new ArrayBuffer(8),
    url: new URL('https://user:urlPass@example.com/p'),
    re: /a+b/i,
    err: new Error('went wrong'),
    boxed: Object('boxed'),
    undef: undefined,
    nested: { a: { b: { c: 'd' } } }
  })
  t.same(flat, {
    'servers[0].host': 'a',
    'servers[0].port': '1',
    'servers[1].host': 'b',
    'servers[1].port': '2',
    hosts: 'a, b, 3, true, null',
    empty: '[]',
    none: '{}',
    when: '2024-05-06T07:08:09.000Z',
    bad_date: 'Invalid Date',
    big: '12345678901234567890',
    symValue: 'Symbol(tag)',
    '[Symbol(tag)]': 'symbol key',
    fn: '[Function handler]',
    arrow: '[Function arrow]',
    'map.alpha': '1',
    'map.2.deep': 'x',
    'map.<key 2>': 'object key',
    set: 'x, y',
    buf: '<Buffer 15 bytes>',
    bytes: '<Uint8Array 16 bytes>',
    ab: '<ArrayBuffer 8 bytes>',
    url: 'https://***@example.com/p',
    re: '/a+b/i',
    err: '[Error: went wrong]',
    boxed: 'boxed',
    undef: 'undefined',
    'nested.a.b.c': 'd'
  })
  t.notOk(JSON.stringify(flat).includes('do not print me'))
})

t.test('flattenConfig: hostile objects', async (t) => {
  const cyclic = { name: 'root', child: { list: [] } }
  cyclic.self = cyclic
  cyclic.child.parent = cyclic
  cyclic.child.list.push(cyclic.child)
  t.same(flattenConfig(cyclic), {
    name: 'root',
    'child.list[0]': '[Circular]',
    'child.parent': '[Circular]',
    self: '[Circular]'
  })

  const shared = { x: 1 }
  t.same(flattenConfig({ a: shared, b: shared }), { 'a.x': '1', 'b.x': '1' }, 'a shared object is not a cycle')

  const getters = {
    ok: 1,
    get broken () { throw new Error('getter exploded') },
    get weird () { throw { toString () { throw new Error('and again') } } }, // eslint-disable-line no-throw-literal
    get password () { return 'fine' }
  }
  const g = flattenConfig(getters)
  t.same(g, { ok: '1', broken: '[getter]', weird: '[getter]', password: '***' }, 'getters are not called: shown as such')

  // Proxies are not looked into (test/conf-as-data.test.js counts the traps).
  const proxy = new Proxy({ a: 1, b: 2 }, { get (target, key) { if (key === 'b') throw new Error('trap'); return target[key] } })
  t.same(flattenConfig({ proxy }), { proxy: '[Proxy]' })
  const keyless = new Proxy({}, { ownKeys () { throw new Error('no keys for you') } })
  t.same(flattenConfig({ keyless }), { keyless: '[Proxy]' })
  const { proxy: revoked, revoke } = Proxy.revocable({}, {})
  revoke()
  t.same(flattenConfig({ revoked }), { revoked: '[Proxy]' })
  t.same(flattenConfig(revoked), { '(root)': '[Proxy]' })

  for (const odd of [null, undefined, 42, 'text', Symbol('s'), 10n, () => {}]) {
    t.doesNotThrow(() => flattenConfig(odd), `flattenConfig(${typeof odd})`)
  }
  t.same(flattenConfig(null), {})
  t.same(flattenConfig('text'), { '(root)': 'text' })
  t.same(flattenConfig({ ['__proto__']: 'x' }), JSON.parse('{"__proto__":"x"}'), '__proto__ stays a key')
})

t.test('flattenConfig: bounded output', async (t) => {
  let deep = { leaf: 'bottom' }
  for (let i = 0; i < 500; i++) deep = { d: deep }
  const d = flattenConfig(deep)
  t.same(Object.keys(d), ['d.d.d.d.d.d.d.d.d.d.d.d'], 'one line at the depth cap')
  t.equal(Object.values(d)[0], '[…depth]')

  const wide = {}
  for (let i = 0; i < 10000; i++) wide[`k${i}`] = i
  const w = flattenConfig(wide)
  const keys = Object.keys(w)
  t.equal(keys.length, 2001, '2000 entries and one truncation line')
  t.equal(keys[keys.length - 1], '…')
  t.equal(w['…'], '8000 more keys not listed (limit 2000 entries or 256 KiB)')

  const nestedWide = { a: wide, b: { c: 1, d: 2 } }
  t.equal(flattenConfig(nestedWide)['…'], '8001 more keys not listed (limit 2000 entries or 256 KiB)', 'counts the keys left at every level; b is not entered')

  const huge = 'x'.repeat(1e6)
  const h = flattenConfig({ huge })
  t.equal(h.huge, 'x'.repeat(2000) + '… (998000 more chars)')

  const bigList = flattenConfig({ list: Array.from({ length: 1e5 }, (_, i) => i) })
  t.ok(bigList.list.length < 2100, 'a long list is cut')
  t.match(bigList.list, /… \(\d+ more chars\)$/)

  const bigObjects = flattenConfig({ list: Array.from({ length: 5000 }, (_, i) => ({ i })) })
  t.equal(Object.keys(bigObjects).length, 2001)
  t.equal(bigObjects['…'], '3000 more keys not listed (limit 2000 entries or 256 KiB)')

  const secretAfterCut = flattenConfig({ text: 'x'.repeat(1990) + ' password=hunter2hunter2' })
  t.notOk(JSON.stringify(secretAfterCut).includes('hunter2'), 'masked before cutting')

  t.ok(JSON.stringify(flattenConfig(deep)).length < 1000)
})

t.test('runtimeConfig', async (t) => {
  const env = {
    NODE_ENV: 'production',
    TZ: 'UTC',
    NODE_OPTIONS: '--max-old-space-size=4096 --db-password=nodeOptionsSecret',
    UV_THREADPOOL_SIZE: '8',
    DATABASE_URL: 'postgres://u:envSecretValue@h/db',
    AWS_SECRET_ACCESS_KEY: 'awsSecretValue'
  }
  const rt = runtimeConfig(env, process.execArgv, 4345298944)
  t.equal(rt['env.NODE_ENV'], 'production')
  t.equal(rt['env.TZ'], 'UTC')
  t.equal(rt['env.NODE_OPTIONS'], '--max-old-space-size=4096 --db-password=***')
  t.equal(rt['env.UV_THREADPOOL_SIZE'], '8')
  t.equal(rt.uvThreadpoolSize, '8 (from UV_THREADPOOL_SIZE)')
  t.equal(rt['env.(values hidden)'], 'AWS_SECRET_ACCESS_KEY, DATABASE_URL', 'other variables by name only')
  t.equal(rt.execPath, process.execPath)
  t.equal(rt.heapSizeLimit, '4345298944 bytes (4144 MiB)')
  t.match(rt['limits.open_files'], /^(\d+|unlimited) \/ (\d+|unlimited) files$/)
  t.match(rt['limits.stack_size'], / bytes$/)
  t.ok('limits.core_file_size' in rt)
  const all = JSON.stringify(rt)
  for (const secret of ['nodeOptionsSecret', 'envSecretValue', 'awsSecretValue']) t.notOk(all.includes(secret), secret)

  t.equal(runtimeConfig({}, [], 1).uvThreadpoolSize, '4 (default)')
  t.equal(runtimeConfig({ UV_THREADPOOL_SIZE: '5000' }, [], 1).uvThreadpoolSize, '1024 (from UV_THREADPOOL_SIZE)')
  t.equal(runtimeConfig({}, ['--abort-on-uncaught-exception', '--x'], 1).execArgv, '--abort-on-uncaught-exception, --x', "the application's execArgv, as given")
})
