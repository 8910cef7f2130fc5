// JSON that never throws: BigInts, cycles, binary data and throwing getters
// become plain markers. Shared by the JSON view and user sections.
import { types } from 'node:util'

// Deep enough for any sane report, shallow enough to stay off the stack limit.
const MAX_DEPTH = 100

function describeError (err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err)
  } catch {
    return 'unknown error'
  }
}

/** A plain copy JSON.stringify cannot choke on; undefined where JSON drops the value. */
function toPlain (value: unknown, ancestors: Set<object>, depth: number): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'function' || typeof value === 'symbol') return undefined
  if (value === null || typeof value !== 'object') return value
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
    if (typeof toJSON === 'function') return toPlain(toJSON.call(value), ancestors, depth + 1)
    if (Array.isArray(value)) return value.map((x) => toPlain(x, ancestors, depth + 1))
    if (types.isSet(value)) return Array.from(value as Set<unknown>, (x) => toPlain(x, ancestors, depth + 1))
    const out: Record<string, unknown> = {}
    const put = (key: string, read: () => unknown): void => {
      let v: unknown
      try {
        v = toPlain(read(), ancestors, depth + 1)
      } catch (err) {
        v = `[getter threw: ${describeError(err)}]`
      }
      // defineProperty, so that a `__proto__` key stays a plain key.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true })
    }
    if (types.isMap(value)) {
      for (const [k, v] of value as Map<unknown, unknown>) put(typeof k === 'symbol' ? k.toString() : String(k), () => v)
    } else {
      for (const k of Object.keys(value)) put(k, () => (value as Record<string, unknown>)[k])
    }
    return out
  } catch (err) {
    return `[unreadable: ${describeError(err)}]`
  } finally {
    ancestors.delete(value)
  }
}

/** JSON.stringify that never throws: BigInt as string, cycles as "[Circular]", functions dropped. */
export function safeJsonStringify (value: unknown, indent = 2): string {
  try {
    return JSON.stringify(toPlain(value, new Set(), 0), null, indent) ?? 'null'
  } catch (err) {
    return JSON.stringify(`[not serializable: ${describeError(err)}]`)
  }
}
