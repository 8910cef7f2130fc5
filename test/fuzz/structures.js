'use strict'
// A seeded generator of hostile values for the configuration and option
// fuzzers: cycles, throwing getters, Proxies (some whose traps throw),
// Symbols, BigInts, deep and wide objects, binary data, huge strings,
// functions, null-prototype objects, Dates, Maps, Sets and class instances
// whose toJSON throws. Secrets are planted only where masking is promised:
// as values (of any shape) under secret-looking keys, as the password of a
// URL, a bearer token, an AWS access key, a PEM private key, a
// `password=` pair in a query or connection string. Each planted secret
// holds a unique marker, so any leak of it, whole or cut, is found.

/** mulberry32: small, fast, good enough to reproduce a case from its seed. */
function prng (seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p
  }
}

const SECRET_KEYS = ['password', 'db_pass', 'DB_PASSWORD', 'apiKey', 'api-key', 'x-auth-token', 'client_secret',
  'Authorization', 'sessionId', 'privateKey', 'credentials', 'passwd', 'accessToken', 'cookie', 'passphrase', 'basicAuth']
const PLAIN_KEYS = ['host', 'port', 'name', 'user', 'url', 'dsn', 'endpoint', 'note', 'options', 'list', 'a', 'b', 'items',
  'timeout', 'region', 'path', 'header', 'args', '__proto__', 'constructor', 'toString', '', ' ', 'a.b', '[0]', 'ключ', '🔑']
const SCHEMES = ['postgres', 'postgresql', 'mysql', 'mongodb+srv', 'redis', 'amqp', 'https', 'http', 'ftp', 'jdbc:mysql', 'sqlserver']

class Generator {
  constructor (seed) {
    this.r = prng(seed)
    this.secrets = []
    this.n = 0
    this.size = 0
    this.huge = 0
  }

  /** A new secret: a marker nobody else writes, and random characters. */
  secret () {
    const s = `Zq${(this.n++).toString(36)}x${Math.floor(this.r.next() * 1e12).toString(36)}Q`
    this.secrets.push(s)
    return s
  }

  /** A string with a secret inside, where maskText (src/redact.ts) must find it. */
  secretText () {
    const r = this.r
    const s = this.secret()
    const around = (x) => r.chance(0.3) ? `${this.word()} ${x} ${this.word()}` : x
    switch (r.int(8)) {
      case 0: return around(`${r.pick(SCHEMES)}://${r.pick(['nova', 'admin', '', 'u.s-er'])}:${s}@db${r.int(9)}.example.com:${1000 + r.int(9000)}/${this.word()}?sslmode=require`)
      case 1: return around(`Bearer ${s}`)
      case 2: {
        this.secrets.pop()
        let key = 'AKIA'
        for (let i = 0; i < 16; i++) key += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[r.int(32)]
        this.secrets.push(key)
        return around(key)
      }
      case 3: return `-----BEGIN ${r.pick(['RSA ', 'EC ', 'OPENSSH ', ''])}PRIVATE KEY-----\nMII${s}\n${r.chance(0.5) ? '-----END PRIVATE KEY-----' : 'cut off'}`
      case 4: return around(`https://api.example.com/v1/items?${r.pick(['password', 'access_token', 'api_key', 'token'])}=${s}&page=${r.int(9)}`)
      case 5: return around(`Server=db.example.com;Database=app;User Id=sa;${r.pick(['Password', 'Pwd'])}=${s};`)
      case 6: return around(`${r.pick(['password', 'token', 'secret'])}${r.pick(['=', ': ', '='])}${s}`)
      default: return around(`--db-password=${s}`)
    }
  }

  word () {
    return this.r.pick(['alpha', 'beta', 'db', 'cache', 'node', 'x', 'service', 'eu-west-1', 'a b', '==', '@', ':', '//'])
  }

  key () {
    const r = this.r
    if (r.chance(0.05)) return 'k'.repeat(r.int(5000))
    if (r.chance(0.05)) return `${r.pick(PLAIN_KEYS)}${r.int(100)}`
    return r.pick(PLAIN_KEYS)
  }

  primitive () {
    const r = this.r
    switch (r.int(12)) {
      case 0: return r.int(1e6)
      case 1: return r.pick([NaN, -0, Infinity, -Infinity, Number.MAX_SAFE_INTEGER, 1e308])
      case 2: return BigInt(r.int(1e9)) ** 3n
      case 3: return r.chance(0.5)
      case 4: return null
      case 5: return undefined
      case 6: return Symbol(this.word())
      case 7: return r.chance(0.5) ? '' : '\u0000\ud800\n\t"\\'
      case 8: return r.chance(0.2) && this.huge++ < 3 ? `${this.secretText()} ${'x'.repeat(100000 + r.int(900000))} ${this.secretText()}` : this.word()
      case 9: return this.secretText()
      default: return `${this.word()}-${r.int(1000)}`
    }
  }

  leaf () {
    const r = this.r
    switch (r.int(14)) {
      case 0: return Buffer.from(`buffer holds ${this.secret()}`)
      case 1: return new Uint8Array(r.int(64))
      case 2: return new Float64Array(4)
      case 3: return new ArrayBuffer(r.int(32))
      case 4: return r.chance(0.5) ? new Date(r.int(2e12)) : new Date(NaN)
      case 5: return /a+(b|c)*$/gi
      case 6: return new Error(this.secretText())
      case 7: return function namedFn () {}
      case 8: return () => {}
      case 9: return new URL(`https://user:${this.secret()}@example.com/p?q=1`)
      case 10: return Object('boxed')
      case 11: return new WeakMap()
      case 12: return Promise.resolve(1)
      default: return this.primitive()
    }
  }

  /** Something hostile to walk into. */
  hostile (depth) {
    const r = this.r
    const inner = () => this.value(depth + 1)
    switch (r.int(10)) {
      case 0: { const o = {}; Object.defineProperty(o, this.key(), { enumerable: true, get () { throw new Error(`getter ${this.word()}`) } }); return o }
      case 1: { const o = {}; Object.defineProperty(o, 'weird', { enumerable: true, get () { throw { toString () { throw new Error('again') } } } }); return o } // eslint-disable-line no-throw-literal
      case 2: return new Proxy({ a: inner(), b: 1 }, { get (t, k) { if (k === 'b') throw new Error('get trap'); return t[k] } })
      case 3: return new Proxy({ a: 1 }, { ownKeys () { throw new Error('ownKeys trap') } })
      case 4: return new Proxy({ a: 1 }, { getOwnPropertyDescriptor () { throw new Error('gopd trap') } })
      case 5: return new Proxy({}, { getPrototypeOf () { throw new Error('proto trap') } })
      case 6: { const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); return proxy }
      case 7: return new (class Thing { constructor () { this.v = inner() } toJSON () { throw new Error('toJSON threw') } })()
      case 8: return Object.assign(Object.create(null), { nullProto: inner() })
      default: return new Proxy([inner(), inner()], {})
    }
  }

  container (depth) {
    const r = this.r
    const width = r.chance(0.03) ? 2100 + r.int(1000) : r.int(6)
    const fill = (put) => { for (let i = 0; i < width; i++) put(i) }
    switch (r.int(5)) {
      case 0: { const a = []; fill(() => a.push(this.value(depth + 1))); return a }
      case 1: { const m = new Map(); fill((i) => m.set(r.chance(0.2) ? { k: i } : this.key() + i, this.value(depth + 1))); return m }
      case 2: { const s = new Set(); fill(() => s.add(this.value(depth + 1))); return s }
      default: {
        const o = r.chance(0.2) ? Object.create(null) : {}
        // defineProperty: a `__proto__` key is a key, as in parsed JSON.
        const put = (k, v) => Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
        fill(() => {
          if (r.chance(0.25)) put(r.pick(SECRET_KEYS), r.chance(0.5) ? this.secret() : this.secretSubtree(depth + 1))
          else if (r.chance(0.05)) put(Symbol(this.word()), this.value(depth + 1))
          else put(this.key(), this.value(depth + 1))
        })
        return o
      }
    }
  }

  /** A whole value under a secret key: every string in it is secret. */
  secretSubtree (depth) {
    const r = this.r
    if (depth > 6 || r.chance(0.4)) return this.secret()
    if (r.chance(0.3)) return [this.secret(), this.secret()]
    if (r.chance(0.2)) return new Map([[this.secret(), this.secret()]])
    return { user: this.secret(), nested: this.secretSubtree(depth + 1), [this.secret()]: 1 }
  }

  value (depth = 0) {
    const r = this.r
    if (++this.size > 2500 || depth > 30) return r.chance(0.5) ? this.primitive() : this.leaf()
    if (depth === 0 || r.chance(0.45)) return this.container(depth)
    if (r.chance(0.15)) return this.hostile(depth)
    if (r.chance(0.03)) { let d = { bottom: this.secretText() }; for (let i = 0; i < 200 + r.int(800); i++) d = { d }; return d }
    return this.leaf()
  }

  /** A configuration: the root, with cycles and shared objects tied in. */
  conf () {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0 // the Errors made here need no stack: much quicker
    let root
    try { root = this.value(0) } finally { Error.stackTraceLimit = limit }
    if (root && typeof root === 'object' && !Array.isArray(root) && !(root instanceof Map) && !(root instanceof Set)) {
      try {
        root.self = root
        root.shared = { same: root.self }
        root.again = root.shared
      } catch {} // a Proxy or frozen thing may refuse
    }
    return root
  }
}

module.exports = { prng, Generator, SECRET_KEYS }
