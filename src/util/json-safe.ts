// JSON that never throws: BigInts, cycles, binary data and throwing getters
// become plain markers. Shared by the JSON view and user sections.
//
// Bounds, so that a hostile value costs little time and memory before the
// caller's size check: depth 100 (`[…depth]`), 100,000 values in all (then
// `[… not listed: limit of 100000 values]`), strings cut at 256 KiB.
import { types } from 'node:util'

// Deep enough for any sane report, shallow enough to stay off the stack limit.
const MAX_DEPTH = 100
const MAX_VALUES = 100_000
const MAX_STRING_CHARS = 256 * 1024

function describeError (err: unknown): string {
  try {
    const text = err instanceof Error ? String(err.message) : String(err)
    return text.length > 1000 ? `${text.slice(0, 1000)}…` : text
  } catch {
    return 'unknown error'
  }
}

interface Walk { ancestors: Set<object>, values: number }

function bounded (s: string): string {
  return s.length > MAX_STRING_CHARS ? `${s.slice(0, MAX_STRING_CHARS)}… (${s.length - MAX_STRING_CHARS} more characters)` : s
}

/** A plain copy JSON.stringify cannot choke on; undefined where JSON drops the value. */
function toPlain (value: unknown, walk: Walk, depth: number): unknown {
  if (++walk.values > MAX_VALUES) return walk.values === MAX_VALUES + 1 ? `[… not listed: limit of ${MAX_VALUES} values]` : undefined
  if (typeof value === 'string') return bounded(value)
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'function' || typeof value === 'symbol') return undefined
  if (value === null || typeof value !== 'object') return value
  const { ancestors } = walk
  if (ancestors.has(value)) return '[Circular]'
  if (depth >= MAX_DEPTH) return '[…depth]'
  ancestors.add(value)
  try {
    // Before toJSON: Buffer's would list every byte.
    if (types.isArrayBufferView(value)) {
      const kind = Buffer.isBuffer(value) ? 'Buffer' : Object.prototype.toString.call(value).slice(8, -1)
      return `<${kind} ${value.byteLength} bytes>`
    }
    const toJSON = (value as { toJSON?: unknown }).toJSON
    if (typeof toJSON === 'function') return toPlain(toJSON.call(value), walk, depth + 1)
    const items = (list: Iterable<unknown>): unknown[] => {
      const out: unknown[] = []
      for (const x of list) {
        if (walk.values > MAX_VALUES) break
        // JSON writes null for what it drops from an array.
        out.push(toPlain(x, walk, depth + 1) ?? null)
      }
      return out
    }
    if (Array.isArray(value)) return items(value)
    if (types.isSet(value)) return items(value as Set<unknown>)
    const out: Record<string, unknown> = {}
    const put = (key: string, read: () => unknown): void => {
      let v: unknown
      try {
        v = toPlain(read(), walk, depth + 1)
      } catch (err) {
        v = `[getter threw: ${describeError(err)}]`
      }
      // defineProperty, so that a `__proto__` key stays a plain key.
      Object.defineProperty(out, bounded(key), { value: v, enumerable: true, writable: true, configurable: true })
    }
    if (types.isMap(value)) {
      for (const [k, v] of value as Map<unknown, unknown>) {
        if (walk.values > MAX_VALUES) break
        put(typeof k === 'symbol' ? k.toString() : String(k), () => v)
      }
    } else {
      for (const k of Object.keys(value)) {
        if (walk.values > MAX_VALUES) break
        put(k, () => (value as Record<string, unknown>)[k])
      }
    }
    return out
  } catch (err) {
    return `[unreadable: ${describeError(err)}]`
  } finally {
    ancestors.delete(value)
  }
}

/** JSON.stringify that never throws: BigInt as string, cycles as "[Circular]", functions dropped; bounded (see above). */
export function safeJsonStringify (value: unknown, indent = 2): string {
  try {
    return JSON.stringify(toPlain(value, { ancestors: new Set(), values: 0 }, 0), null, indent) ?? 'null'
  } catch (err) {
    return JSON.stringify(`[not serializable: ${describeError(err)}]`)
  }
}
