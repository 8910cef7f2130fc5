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
//   as `<Buffer N bytes>`, `[Circular]`;
// - read as data (src/util/as-data.ts): own enumerable data properties only;
//   an accessor reads `[getter]`, `[setter]` or `[getter/setter]` and a Proxy
//   `[Proxy]`, neither run: a report may come mid-operation;
// - a secret path (src/redact.ts) masks its whole value as one `***` line,
//   even an object: listing its sub-keys could leak them (session ids as map
//   keys);
// - bounds: below depth 12 a value reads `[…depth]`; after 2000 lines, or
//   256 KiB of keys and values, one `… = N more keys not listed` line ends
//   the listing; values over 2000 characters are cut with `… (N more
//   chars)`, each part of a key over 200 the same way;
// - in a list, the item after a secret flag (`['--password', 'x']`) is masked;
// - when two paths collide (`{ 'a.b': 1, a: { b: 2 } }`) the later one wins.
import fs from 'node:fs'
import { types } from 'node:util'
import { isSecretPath, maskArgs, maskText, MASK, matchesSecretKeys, namedSecret, redactionSettings, type SecretKeys } from '../redact'
import {
  arrayContents, binaryText, dateText, inheritedData, inherits, mapContents, ownData, ownProperties,
  regexpText, setContents, symbolName, unboxed, urlText
} from '../util/as-data'

const MAX_DEPTH = 12
const MAX_ENTRIES = 2000
const MAX_VALUE_CHARS = 2000
const MAX_KEY_CHARS = 200
const MAX_TOTAL_CHARS = 256 * 1024
// Masking scans a bounded prefix: enough to cover what is shown, and the
// patterns treat a cut-off PEM block as still secret.
const MASK_WINDOW_CHARS = 16 * 1024

/** A string shown as a value: masked, then cut to a readable length. */
function boundedText (s: string, extra: SecretKeys = redactionSettings().secretKeys, max = MAX_VALUE_CHARS): string {
  const window = s.length > MASK_WINDOW_CHARS ? s.slice(0, MASK_WINDOW_CHARS) : s
  const masked = maskText(window, extra)
  if (masked.length <= max && window === s) return masked
  return `${masked.slice(0, max)}… (${Math.max(s.length, masked.length) - max} more chars)`
}

function describeError (err: unknown): string {
  try {
    // Our own errors (a revoked Proxy's TypeError) or one in the configuration: its own message, as data.
    const message = err !== null && typeof err === 'object' && !types.isProxy(err) ? inheritedData(err, 'message') : err
    return boundedText(typeof message === 'string' ? message : typeof message === 'object' ? 'unknown error' : String(message))
  } catch {
    return 'unknown error'
  }
}

function describeFunction (fn: Function): string {
  const name = ownData(fn, 'name')
  return typeof name === 'string' && name !== '' ? `[Function ${name}]` : '[Function]'
}

/** A value that prints on one line without walking into it, or null. Runs none of the application's code. */
function leafText (value: unknown, extra: SecretKeys): string | null {
  switch (typeof value) {
    case 'string': return boundedText(value, extra)
    case 'number': case 'boolean': case 'bigint': case 'undefined': return String(value)
    case 'symbol': return symbolName(value)
  }
  if (value === null) return 'null'
  const v = value as object
  if (types.isProxy(v)) return '[Proxy]'
  if (typeof v === 'function') return describeFunction(v)
  if (types.isDate(v)) return dateText(v as Date)
  // Binary data can hold anything, keys included: only its size is shown.
  const binary = binaryText(v)
  if (binary !== null) return binary
  if (inherits(v, URL.prototype)) return boundedText(urlText(v as URL), extra)
  if (types.isRegExp(v)) return regexpText(v as RegExp)
  if (types.isNativeError(v) || inherits(v, Error.prototype)) {
    const name = inheritedData(v, 'name')
    return `[${typeof name === 'string' ? boundedText(name, extra) : 'Error'}: ${describeError(v)}]`
  }
  if (types.isBoxedPrimitive(v)) return leafText(unboxed(v), extra)
  if (types.isPromise(v)) return '[Promise]'
  if (types.isWeakMap(v) || types.isWeakSet(v)) return types.isWeakMap(v) ? '[WeakMap]' : '[WeakSet]'
  return null
}

function isPrimitive (v: unknown): boolean {
  return v === null || (typeof v !== 'object' && typeof v !== 'function')
}

/** What the walk knows of a child: its value as data, or a marker already shown as text. */
type Child = { label: string, value: unknown } | { label: string, shown: string }

class Flattener {
  readonly entries: Array<[string, string]> = []
  leftOut = 0
  private chars = 0
  private readonly ancestors = new Set<object>()
  /** The keys from the root to the value being walked, for path rules. */
  private readonly groups: string[] = []

  constructor (private readonly extra: SecretKeys) {}

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
      const leaf = leafText(value, this.extra)
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
      const { entries, size } = mapContents(obj as Map<unknown, unknown>, MAX_ENTRIES)
      this.leftOut += size - entries.length
      return this.walkEntries(entries.map(([k, v], i) => ({
        label: isPrimitive(k) ? (typeof k === 'symbol' ? `[${symbolName(k)}]` : String(k)) : `<key ${i}>`,
        value: v
      })), null, path, depth, '{}')
    }
    if (types.isSet(obj) || Array.isArray(obj)) {
      let items: Child[]
      let total: number
      if (types.isSet(obj)) {
        const { values, size } = setContents(obj as Set<unknown>, MAX_ENTRIES)
        items = values.map((value, i) => ({ label: `[${i}]`, value }))
        total = size
      } else {
        const { items: elements, length } = arrayContents(obj as unknown[], MAX_ENTRIES)
        items = elements.map((e, i) => 'accessor' in e ? { label: `[${i}]`, shown: e.accessor } : { label: `[${i}]`, value: e.value })
        total = length
      }
      if (items.length === 0) return this.emit(path, '[]')
      if (items.every((x) => 'shown' in x || isPrimitive(x.value))) {
        // Only as much as can be shown is masked: a window's worth.
        const texts: string[] = []
        let length = 0
        for (const x of items) {
          if (length > MASK_WINDOW_CHARS) break
          const text = 'shown' in x ? x.shown : typeof x.value === 'string' ? x.value.slice(0, MASK_WINDOW_CHARS) : leafText(x.value, this.extra) ?? ''
          texts.push(text)
          length += text.length + 2
        }
        const more = total > texts.length ? `, … (${total - texts.length} more)` : ''
        return this.emit(path, boundedText(maskArgs(texts, this.extra).join(', ') + more, this.extra))
      }
      this.leftOut += total - items.length
      return this.walkEntries(items, null, path, depth, '[]', '')
    }
    const children: Child[] = ownProperties(obj).map((p) => {
      const label = typeof p.key === 'symbol' ? `[${symbolName(p.key)}]` : p.key
      return 'accessor' in p ? { label, shown: p.accessor } : { label, value: p.value }
    })
    this.walkEntries(children, obj, path, depth, '{}')
  }

  /** owner: the object whose own properties these are, for a `value` named by its sibling `name`. */
  private walkEntries (children: Child[], owner: object | null, path: string, depth: number, empty: string, sep = '.'): void {
    if (children.length === 0) return this.emit(path, empty)
    for (const child of children) {
      if (this.full()) { this.leftOut++; continue }
      const key = boundedText(child.label, this.extra, MAX_KEY_CHARS)
      const childPath = path === '' ? key : `${path}${sep}${key}`
      // Array indexes are no group: `servers[0].password` is judged by `servers`.
      const groups = this.groups
      if (isSecretPath(groups, key, this.extra) || matchesSecretKeys(childPath, this.extra) || (owner !== null && namedSecret((k) => ownData(owner, k), key, this.extra))) {
        this.emit(childPath, MASK)
        continue
      }
      if ('shown' in child) {
        this.emit(childPath, child.shown)
        continue
      }
      const isIndex = sep === ''
      if (!isIndex) groups.push(key)
      try {
        this.walk(child.value, childPath, depth + 1)
      } finally {
        if (!isIndex) groups.pop()
      }
    }
  }
}

/** Flattens any object to oslo-style `group.key` → value strings, secrets masked, read as data; bounded and never throws. */
export function flattenConfig (conf: unknown, secretKeys: SecretKeys = []): Record<string, string> {
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

// Values of these variables are safe to show (still masked as free text,
// for NODE_OPTIONS); any other is listed by name only.
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
 * limits, allow-listed environment. `execArgv` and the heap limit are the
 * application's main thread's, also when the reporter (which has its own)
 * computes it.
 */
export function runtimeConfig (env: NodeJS.ProcessEnv, execArgv: string[], heap: number): Record<string, string> {
  try {
    const out = flattenConfig({
      execPath: process.execPath,
      execArgv,
      heapSizeLimit: `${heap} bytes (${Math.round(heap / 1048576)} MiB)`,
      uvThreadpoolSize: threadpoolSize(env.UV_THREADPOOL_SIZE),
      limits: resourceLimits()
    }, redactionSettings().secretKeys)
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
