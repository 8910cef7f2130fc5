// Configuration: the application's `conf` and Node's runtime settings as
// oslo-style `group.key = value` lines, with secrets masked.
//
// Flattening conventions (flattenConfig):
// - nested keys join with `.`: `{ database: { connection: 'x' } }` gives
//   `database.connection = x`; Symbol keys appear as `[Symbol(desc)]`;
// - an array (or Set) of primitives is one comma list, `hosts = a, b`; any
//   other array is indexed, `servers[0].host = a`; empty ones print `[]`,
//   empty objects `{}`; Map entries flatten like object keys;
// - leaves: Dates as ISO, BigInts as digits, `[Function name]`, binary data
//   as `<Buffer N bytes>`, `[Circular]`, `[getter threw: msg]`;
// - a secret key masks its whole value as one `***` line, even an object:
//   listing its sub-keys could leak them (session ids as map keys);
// - bounds: below depth 12 a value reads `[…depth]`; after 2000 lines, or
//   256 KiB of keys and values, one `… = N more keys not listed` line ends
//   the listing; values over 2000 characters are cut with `… (N more
//   chars)`, each part of a key over 200 the same way;
// - in a list, the item after a secret flag (`['--password', 'x']`) is masked;
// - when two paths collide (`{ 'a.b': 1, a: { b: 2 } }`) the later one wins.
import fs from 'node:fs'
import { types } from 'node:util'

const MAX_DEPTH = 12
const MAX_ENTRIES = 2000
const MAX_VALUE_CHARS = 2000
const MAX_KEY_CHARS = 200
const MAX_TOTAL_CHARS = 256 * 1024
// Masking scans a bounded prefix: enough to cover what is shown, and the
// patterns below treat a cut-off PEM block as still secret.
const MASK_WINDOW_CHARS = 16 * 1024
const MASK = '***'

// Compared against keys lower-cased with separators removed, so `api key`,
// `api_key`, `api-key` and `apiKey` all read `apikey`.
const SECRET_WORDS = [
  'password', 'passwd', 'passphrase', 'pwd', 'secret', 'token', 'apikey',
  'privatekey', 'credential', 'cookie', 'session', 'signingkey', 'encryptionkey',
  'masterkey', 'accesskey'
]
// Too short for a substring test (`unauthorized`, `bypass`): `auth…` must
// start a word of the key (`authorization`, `x-auth-token`, `basicAuth`),
// `pass` must be one (`DB_PASS`).
const SECRET_WORD = /^(?:auth|pass$)/

function words (key: string): string[] {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z])([A-Z][a-z])/g, '$1 $2')
    .toLowerCase().split(/[^a-z0-9]+/)
}

function matchesExtra (key: string, extra: readonly (string | RegExp)[]): boolean {
  const lower = key.toLowerCase()
  return extra.some((x) => typeof x === 'string'
    ? x !== '' && lower.includes(x.toLowerCase())
    // search() ignores and restores lastIndex, so /g patterns stay stable.
    : x instanceof RegExp && key.search(x) !== -1)
}

/** Whether a configuration key names a secret; extra strings match as case-insensitive substrings, RegExps test the key. */
export function isSecretKey (key: string, extra: readonly (string | RegExp)[] = []): boolean {
  try {
    const squashed = key.toLowerCase().replace(/[^a-z0-9]/g, '')
    return SECRET_WORDS.some((w) => squashed.includes(w)) ||
      words(key).some((w) => SECRET_WORD.test(w)) ||
      matchesExtra(key, extra)
  } catch {
    return true // when in doubt, mask
  }
}

// Patterns start only where a run of their characters starts, and bound
// their quantifiers, so that none goes quadratic on long input.
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----|$)/g
// `scheme://user:password@host`: everything up to the last `@` of the
// authority goes, since an unencoded `@` in a password is common.
const URL_USERINFO = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}:\/\/)[^\s/?#]{1,2048}@/gi
const BEARER = /\b(Bearer)\s+[A-Za-z0-9\-._~+/]{1,4096}=*/gi
const AWS_ACCESS_KEY = /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g
// Tokens whose prefix says what they are: GitHub's, Slack's, and JWTs
// (three base64url parts, the first two JSON objects: `eyJ`).
const GITHUB_TOKEN = /\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})\b/g
const SLACK_TOKEN = /\bxox[abeposr]-[A-Za-z0-9-]{10,255}/g
const JWT = /\beyJ[A-Za-z0-9_-]{4,4096}\.eyJ[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{0,4096}/g
// `password=x`, `"token": "x"`, `Authorization: Basic x`, `?api_key=x&`,
// `--db-password x`. The key is a whole run of `[\w.-]` holding a secret
// word (`auth` and `pass` as for keys); a run inside a URL
// (`https://auth.example.com:443`) is no key. An opening bracket is not a
// value: the pairs inside it are masked one by one.
const KEY_VALUE = new RegExp(
  String.raw`(["']?)(?<![\w./@-])` +
  String.raw`(?=[\w.-]{0,64}?(?:password|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|credential|cookie|session|(?<![a-z])auth|(?<![a-z])pass(?:phrase)?(?![a-z])))` +
  String.raw`([\w.-]{1,128})(?![\w.-])\1` +
  // `=` or `:`; bare spaces only after a `-flag`, and not before another flag.
  String.raw`(\s*[=:]\s*|(?<=(?:^|\s)-[\w.-]{0,127})\s+(?!-))` +
  String.raw`("[^"\n]*"|'[^'\n]*'|(?:(?:bearer|basic|token|digest)\s+)?[^\s&;,"'{}[\]()<>]+)`,
  'gi')

// Every pattern above needs one of these: text without any is left as it is
// without running (and compiling) them, which is most text, and set-up's
// masking of argv.
const MAY_HOLD_SECRET = /-----|:\/\/|bearer|akia|asia|pass|pwd|secret|token|key|credential|cookie|session|auth|gh[pousr]_|github_pat_|xox|eyJ/i

/** Masks secrets inside free text: URL credentials, PEM private keys, bearer tokens, AWS access keys, GitHub and Slack tokens, JWTs, `password=…` pairs. */
export function maskSecretsInText (s: string): string {
  try {
    if (!MAY_HOLD_SECRET.test(s)) return s
    return s
      .replace(PEM_PRIVATE_KEY, MASK)
      .replace(URL_USERINFO, `$1${MASK}@`)
      .replace(BEARER, `$1 ${MASK}`)
      .replace(AWS_ACCESS_KEY, MASK)
      .replace(GITHUB_TOKEN, MASK)
      .replace(SLACK_TOKEN, MASK)
      .replace(JWT, MASK)
      .replace(KEY_VALUE, (_m, q: string, key: string, sep: string, value: string) => {
        const quote = value[0] === '"' || value[0] === "'" ? value[0] : ''
        return `${q}${key}${q}${sep}${quote}${MASK}${quote}`
      })
  } catch {
    return MASK
  }
}

/** A string shown as a value: masked, then cut to a readable length. */
function boundedText (s: string, max = MAX_VALUE_CHARS): string {
  const window = s.length > MASK_WINDOW_CHARS ? s.slice(0, MASK_WINDOW_CHARS) : s
  const masked = maskSecretsInText(window)
  if (masked.length <= max && window === s) return masked
  return `${masked.slice(0, max)}… (${Math.max(s.length, masked.length) - max} more chars)`
}

/**
 * Command-line style arguments, masked: the value after a secret flag
 * (`--password x`), `--token=x`, and secrets in any text. For argv, execArgv
 * and lists of strings in the configuration.
 */
export function maskArgs (args: string[], secretKeys: readonly (string | RegExp)[] = []): string[] {
  return args.map((arg, i) => {
    const previous = args[i - 1]
    if (typeof previous === 'string' && /^--?[\w.-]+$/.test(previous) && isSecretKey(previous.replace(/^-+/, ''), secretKeys)) return MASK
    const flag = /^(--?[\w.-]+)=/.exec(arg)
    if (flag && isSecretKey(flag[1].replace(/^-+/, ''), secretKeys)) return `${flag[1]}=${MASK}`
    return maskSecretsInText(arg)
  })
}

function describeError (err: unknown): string {
  try {
    return boundedText(err instanceof Error ? String(err.message) : String(err))
  } catch {
    return 'unknown error'
  }
}

function describeFunction (fn: Function): string {
  try {
    return `[Function ${typeof fn.name === 'string' && fn.name !== '' ? fn.name : '(anonymous)'}]`
  } catch {
    return '[Function]'
  }
}

/** A value that prints on one line without walking into it, or null. */
function leafText (value: unknown): string | null {
  switch (typeof value) {
    case 'string': return boundedText(value)
    case 'number': case 'boolean': case 'bigint': case 'undefined': return String(value)
    case 'symbol': return value.toString()
    case 'function': return describeFunction(value)
  }
  if (value === null) return 'null'
  const v = value as object
  if (types.isDate(v)) {
    const t = (v as Date).getTime()
    return Number.isNaN(t) ? 'Invalid Date' : (v as Date).toISOString()
  }
  // Binary data can hold anything, keys included: only its size is shown.
  if (Buffer.isBuffer(v)) return `<Buffer ${v.length} bytes>`
  if (types.isArrayBufferView(v)) return `<${Object.prototype.toString.call(v).slice(8, -1)} ${v.byteLength} bytes>`
  if (types.isAnyArrayBuffer(v)) return `<${types.isSharedArrayBuffer(v) ? 'SharedArrayBuffer' : 'ArrayBuffer'} ${v.byteLength} bytes>`
  if (v instanceof URL) return boundedText(v.href)
  if (types.isRegExp(v)) return String(v)
  if (types.isNativeError(v) || v instanceof Error) return `[${describeError((v as Error).name)}: ${describeError(v)}]`
  if (types.isBoxedPrimitive(v)) return leafText((v as { valueOf(): unknown }).valueOf())
  return null
}

function isPrimitive (v: unknown): boolean {
  return v === null || (typeof v !== 'object' && typeof v !== 'function')
}

class Flattener {
  readonly entries: Array<[string, string]> = []
  leftOut = 0
  private chars = 0
  private readonly ancestors = new Set<object>()

  constructor (private readonly extra: readonly (string | RegExp)[]) {}

  private emit (path: string, text: string): void {
    this.entries.push([path === '' ? '(root)' : path, text])
    this.chars += path.length + text.length
  }

  private full (): boolean {
    return this.entries.length >= MAX_ENTRIES || this.chars >= MAX_TOTAL_CHARS
  }

  walk (value: unknown, path: string, depth: number): void {
    // Past the cap each remaining key is counted, not visited.
    if (this.full()) { this.leftOut++; return }
    try {
      const leaf = leafText(value)
      if (leaf !== null) return this.emit(path, leaf)
      const obj = value as object
      if (this.ancestors.has(obj)) return this.emit(path, '[Circular]')
      if (depth >= MAX_DEPTH) return this.emit(path, '[…depth]')
      this.ancestors.add(obj)
      try {
        this.walkContainer(obj, path, depth)
      } finally {
        this.ancestors.delete(obj)
      }
    } catch (err) {
      this.emit(path, `[unreadable: ${describeError(err)}]`)
    }
  }

  private walkContainer (obj: object, path: string, depth: number): void {
    if (types.isMap(obj)) {
      const map = obj as Map<unknown, unknown>
      const entries: Array<[string, () => unknown]> = []
      for (const [k, v] of map) {
        if (entries.length >= MAX_ENTRIES) break
        const label = isPrimitive(k) ? (typeof k === 'symbol' ? `[${k.toString()}]` : String(k)) : `<key ${entries.length}>`
        entries.push([label, () => v])
      }
      this.leftOut += map.size - entries.length
      return this.walkEntries(entries, path, depth, '{}')
    }
    if (types.isSet(obj) || Array.isArray(obj)) {
      const total = types.isSet(obj) ? (obj as Set<unknown>).size : (obj as unknown[]).length
      const items: unknown[] = []
      for (const x of obj as Iterable<unknown>) {
        if (items.length >= MAX_ENTRIES) break
        items.push(x)
      }
      if (items.length === 0) return this.emit(path, '[]')
      if (items.every(isPrimitive)) {
        // Only as much as can be shown is masked: a window's worth.
        const texts: string[] = []
        let length = 0
        for (const x of items) {
          if (length > MASK_WINDOW_CHARS) break
          const text = typeof x === 'string' ? x.slice(0, MASK_WINDOW_CHARS) : leafText(x) ?? ''
          texts.push(text)
          length += text.length + 2
        }
        const more = total > texts.length ? `, … (${total - texts.length} more)` : ''
        return this.emit(path, boundedText(maskArgs(texts, this.extra).join(', ') + more))
      }
      this.leftOut += total - items.length
      return this.walkEntries(items.map((x, i) => [`[${i}]`, () => x]), path, depth, '[]', '')
    }
    const keys = Reflect.ownKeys(obj).filter((k) => Object.prototype.propertyIsEnumerable.call(obj, k))
    const entries: Array<[string, () => unknown]> = keys.map((k) => [
      typeof k === 'symbol' ? `[${k.toString()}]` : k,
      () => (obj as Record<PropertyKey, unknown>)[k]
    ])
    this.walkEntries(entries, path, depth, '{}')
  }

  private walkEntries (entries: Array<[string, () => unknown]>, path: string, depth: number, empty: string, sep = '.'): void {
    if (entries.length === 0) return this.emit(path, empty)
    for (const [label, read] of entries) {
      if (this.full()) { this.leftOut++; continue }
      const key = boundedText(label, MAX_KEY_CHARS)
      const childPath = path === '' ? key : `${path}${sep}${key}`
      if (isSecretKey(key, this.extra) || matchesExtra(childPath, this.extra)) {
        this.emit(childPath, MASK)
        continue
      }
      let value: unknown
      try {
        value = read()
      } catch (err) {
        this.emit(childPath, `[getter threw: ${describeError(err)}]`)
        continue
      }
      this.walk(value, childPath, depth + 1)
    }
  }
}

/** Flattens any object to oslo-style `group.key` → value strings, secrets masked; bounded and never throws. */
export function flattenConfig (conf: unknown, secretKeys: (string | RegExp)[] = []): Record<string, string> {
  try {
    if (conf === undefined || conf === null) return {}
    const f = new Flattener(Array.isArray(secretKeys) ? secretKeys : [])
    f.walk(conf, '', 0)
    if (f.leftOut > 0) f.entries.push(['…', `${f.leftOut} more keys not listed (limit ${MAX_ENTRIES} entries or ${MAX_TOTAL_CHARS / 1024} KiB)`])
    // fromEntries defines own properties, so a `__proto__` key stays a key.
    return Object.fromEntries(f.entries)
  } catch (err) {
    return { '(error)': `configuration could not be read: ${describeError(err)}` }
  }
}

// Values of these variables are safe to show (still passed through
// maskSecretsInText, for NODE_OPTIONS); any other is listed by name only.
const SAFE_ENV = [
  'NODE_ENV', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'NODE_TLS_REJECT_UNAUTHORIZED',
  'NODE_NO_WARNINGS', 'NODE_PENDING_DEPRECATION', 'NODE_DEBUG', 'NODE_DEBUG_NATIVE',
  'NODE_PATH', 'NODE_ICU_DATA', 'NODE_PRESERVE_SYMLINKS', 'NODE_REDIRECT_WARNINGS',
  'NODE_V8_COVERAGE', 'NODE_COMPILE_CACHE', 'UV_THREADPOOL_SIZE', 'UV_USE_IO_URING',
  'TZ', 'LANG', 'LC_ALL', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'OPENSSL_CONF'
]

/** `/proc/self/limits` as `open_files` → `1024 / 4096 files`. */
function resourceLimits (): Record<string, string> {
  const limits: Record<string, string> = {}
  try {
    const lines = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)
    for (const line of lines) {
      // Columns are separated by runs of spaces; names have single spaces.
      const [name, soft, hard, units] = line.trim().split(/\s{2,}/)
      if (!name || soft === undefined || hard === undefined) continue
      const key = name.replace(/^Max /, '').replace(/\s+/g, '_')
      limits[key] = `${soft} / ${hard}${units ? ` ${units}` : ''}`
    }
  } catch (err) {
    limits['(error)'] = describeError(err)
  }
  return limits
}

// libuv reads UV_THREADPOOL_SIZE once, clamped to 1..1024, default 4.
function threadpoolSize (raw: string | undefined): string {
  if (raw === undefined || raw === '') return '4 (default)'
  const n = Math.min(Math.max(Number.parseInt(raw, 10) || 1, 1), 1024)
  return `${n} (from UV_THREADPOOL_SIZE)`
}

/**
 * Node's runtime configuration: flags, heap limit, threadpool, resource
 * limits, allow-listed environment. `execArgv` is the application's, also
 * when the reporter (which has none) computes it.
 */
export function runtimeConfig (env: NodeJS.ProcessEnv = process.env, execArgv: string[] = process.execArgv): Record<string, string> {
  try {
    // Loaded here: set-up should not pay for it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const heap = (require('node:v8') as typeof import('node:v8')).getHeapStatistics().heap_size_limit
    const out = flattenConfig({
      execPath: process.execPath,
      execArgv,
      heapSizeLimit: `${heap} bytes (${Math.round(heap / 1048576)} MiB)`,
      uvThreadpoolSize: threadpoolSize(env.UV_THREADPOOL_SIZE),
      limits: resourceLimits()
    })
    // Added here rather than flattened: the allow-list, not key names, decides.
    for (const name of SAFE_ENV) {
      const value = env[name]
      if (value !== undefined) out[`env.${name}`] = boundedText(String(value))
    }
    const hidden = Object.keys(env).filter((n) => !SAFE_ENV.includes(n)).sort()
    if (hidden.length > 0) out['env.(values hidden)'] = boundedText(hidden.join(', '))
    return out
  } catch (err) {
    return { '(error)': `runtime configuration could not be read: ${describeError(err)}` }
  }
}
