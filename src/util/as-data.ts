// Reading the application's objects as data, running none of its code: a
// report may be written from an interrupt, in the middle of one of the
// application's operations, where a getter, a Proxy trap or an overridden
// method would run at the wrong time (and could change what it reads).
//
// Only own properties are read, by descriptor: an accessor is reported as
// such, never called. A Proxy is never looked into (util.types.isProxy runs
// no trap). Built-in types (Map, Set, Date, URL, RegExp, typed arrays, boxed
// primitives) are read through the built-in methods captured when this
// module loads, so that a subclass's overrides are not called either.
import { types } from 'node:util'

type Getter = (this: unknown) => unknown

function getter (proto: object, key: PropertyKey): Getter {
  const get = Object.getOwnPropertyDescriptor(proto, key)?.get
  if (typeof get !== 'function') throw new Error(`no built-in getter for ${String(key)}`)
  return get
}

const { getOwnPropertyDescriptor, getPrototypeOf } = Object
const { ownKeys } = Reflect
const call = Function.prototype.call.bind(Function.prototype.call) as (f: Function, self: unknown, ...args: unknown[]) => unknown
const TypedArrayProto = getPrototypeOf(Uint8Array.prototype) as object
const typedArrayTag = getter(TypedArrayProto, Symbol.toStringTag)
const typedArrayBytes = getter(TypedArrayProto, 'byteLength')
const dataViewBytes = getter(DataView.prototype, 'byteLength')
const arrayBufferBytes = getter(ArrayBuffer.prototype, 'byteLength')
const sharedBufferBytes = typeof SharedArrayBuffer === 'function' ? getter(SharedArrayBuffer.prototype, 'byteLength') : null
const mapSize = getter(Map.prototype, 'size')
const setSize = getter(Set.prototype, 'size')
const mapEntries = Map.prototype.entries
const setValues = Set.prototype.values
const mapIteratorNext = getPrototypeOf(new Map().entries()).next as (this: unknown) => IteratorResult<[unknown, unknown]>
const setIteratorNext = getPrototypeOf(new Set().values()).next as (this: unknown) => IteratorResult<unknown>
const dateTime = Date.prototype.getTime
const dateIso = Date.prototype.toISOString
const urlHref = getter(URL.prototype, 'href')
const regexpSource = getter(RegExp.prototype, 'source')
// In the order RegExp.prototype.flags writes them.
const REGEXP_FLAGS: Array<[string, Getter]> = [['hasIndices', 'd'], ['global', 'g'], ['ignoreCase', 'i'], ['multiline', 'm'],
  ['dotAll', 's'], ['unicode', 'u'], ['unicodeSets', 'v'], ['sticky', 'y']]
  .filter(([name]) => getOwnPropertyDescriptor(RegExp.prototype, name)?.get)
  .map(([name, flag]) => [flag, getter(RegExp.prototype, name)])
const stringValue = String.prototype.valueOf
const numberValue = Number.prototype.valueOf
const booleanValue = Boolean.prototype.valueOf
const bigintValue = BigInt.prototype.valueOf
const symbolValue = Symbol.prototype.valueOf
const symbolText = Symbol.prototype.toString

/** How an own property is shown: its value, or what kind of accessor it is. */
export type Property =
  | { key: string | symbol, value: unknown }
  | { key: string | symbol, accessor: '[getter]' | '[setter]' | '[getter/setter]' }

/** The own enumerable properties of a non-Proxy object, by descriptor: no getter runs. */
export function ownProperties (obj: object): Property[] {
  const out: Property[] = []
  for (const key of ownKeys(obj)) {
    const d = getOwnPropertyDescriptor(obj, key)
    if (d === undefined || d.enumerable !== true) continue
    if ('value' in d) out.push({ key, value: d.value })
    else out.push({ key, accessor: d.get && d.set ? '[getter/setter]' : d.get ? '[getter]' : '[setter]' })
  }
  return out
}

/** An own data property's value, or undefined (accessor, absent). */
export function ownData (obj: object, key: PropertyKey): unknown {
  const d = getOwnPropertyDescriptor(obj, key)
  return d !== undefined && 'value' in d ? d.value : undefined
}

/** A data property found on obj or its prototypes, stopping at a Proxy or an accessor. */
export function inheritedData (obj: object, key: PropertyKey): unknown {
  let o: object | null = obj
  for (let i = 0; o !== null && i < 64 && !types.isProxy(o); i++) {
    const d = getOwnPropertyDescriptor(o, key)
    if (d !== undefined) return 'value' in d ? d.value : undefined
    o = getPrototypeOf(o) as object | null
  }
  return undefined
}

/** Whether proto is on obj's prototype chain, found without `instanceof` (which may meet a Proxy's trap). */
export function inherits (obj: object, proto: object): boolean {
  let o: object | null = obj
  for (let i = 0; o !== null && i < 64 && !types.isProxy(o); i++) {
    o = getPrototypeOf(o) as object | null
    if (o === proto) return true
  }
  return false
}

/** A Map's entries (at most max), through Map's own iterator, and its size. */
export function mapContents (map: Map<unknown, unknown>, max: number): { entries: Array<[unknown, unknown]>, size: number } {
  const entries: Array<[unknown, unknown]> = []
  const it = call(mapEntries, map)
  for (let r = call(mapIteratorNext, it) as IteratorResult<[unknown, unknown]>; !r.done && entries.length < max; r = call(mapIteratorNext, it) as IteratorResult<[unknown, unknown]>) {
    entries.push(r.value)
  }
  return { entries, size: call(mapSize, map) as number }
}

/** A Set's values (at most max), through Set's own iterator, and its size. */
export function setContents (set: Set<unknown>, max: number): { values: unknown[], size: number } {
  const values: unknown[] = []
  const it = call(setValues, set)
  for (let r = call(setIteratorNext, it) as IteratorResult<unknown>; !r.done && values.length < max; r = call(setIteratorNext, it) as IteratorResult<unknown>) {
    values.push(r.value)
  }
  return { values, size: call(setSize, set) as number }
}

/** An array's first max elements, by descriptor (an accessor element is shown as such), and its length. */
export function arrayContents (array: unknown[], max: number): { items: Array<{ value: unknown } | { accessor: string }>, length: number } {
  const length = ownData(array, 'length') as number
  const items: Array<{ value: unknown } | { accessor: string }> = []
  for (let i = 0; i < length && i < max; i++) {
    const d = getOwnPropertyDescriptor(array, i)
    if (d === undefined) items.push({ value: undefined })
    else if ('value' in d) items.push({ value: d.value })
    else items.push({ accessor: d.get && d.set ? '[getter/setter]' : d.get ? '[getter]' : '[setter]' })
  }
  return { items, length }
}

export function dateText (d: Date): string {
  const t = call(dateTime, d) as number
  return Number.isNaN(t) ? 'Invalid Date' : call(dateIso, d) as string
}

export function urlText (u: URL): string {
  return call(urlHref, u) as string
}

export function regexpText (r: RegExp): string {
  return `/${call(regexpSource, r) as string}/${REGEXP_FLAGS.filter(([, get]) => call(get, r) === true).map(([flag]) => flag).join('')}`
}

/** `<Buffer 15 bytes>`, `<Uint8Array 16 bytes>`, `<ArrayBuffer 8 bytes>`: binary data by size only. */
export function binaryText (v: object): string | null {
  if (types.isTypedArray(v)) {
    const kind = inherits(v, Buffer.prototype) ? 'Buffer' : call(typedArrayTag, v) as string
    return `<${kind} ${call(typedArrayBytes, v) as number} bytes>`
  }
  if (types.isDataView(v)) return `<DataView ${call(dataViewBytes, v) as number} bytes>`
  if (types.isSharedArrayBuffer(v) && sharedBufferBytes) return `<SharedArrayBuffer ${call(sharedBufferBytes, v) as number} bytes>`
  if (types.isArrayBuffer(v)) return `<ArrayBuffer ${call(arrayBufferBytes, v) as number} bytes>`
  return null
}

/** A boxed primitive's primitive, read by the built-in valueOf. */
export function unboxed (v: object): unknown {
  if (types.isStringObject(v)) return call(stringValue, v)
  if (types.isNumberObject(v)) return call(numberValue, v)
  if (types.isBooleanObject(v)) return call(booleanValue, v)
  if (types.isBigIntObject(v)) return call(bigintValue, v)
  if (types.isSymbolObject(v)) return call(symbolValue, v)
  return undefined
}

export function symbolName (s: symbol): string {
  return call(symbolText, s) as string
}
