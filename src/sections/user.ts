// User sections from registerSection, each run on its own deadline so a slow
// or failing generator costs only its own section.
import type { UserSection } from '../model'
import { maskText, redactJson, redactionSettings } from '../redact'
import { safeJsonStringify } from '../util/json-safe'

export type SectionGenerator = () => unknown

const generators = new Map<string, SectionGenerator>()
const listeners = new Set<(names: string[]) => void>()

export function registerSection (name: string, generator: SectionGenerator): void {
  if (typeof name !== 'string' || name.trim() === '') throw new TypeError('guru-meditation: registerSection: name must be a non-empty string')
  if (typeof generator !== 'function') throw new TypeError(`guru-meditation: registerSection: the generator of section '${name}' must be a function`)
  generators.set(name, generator)
  for (const listener of listeners) listener(sectionNames())
}

export function sectionNames (): string[] {
  return [...generators.keys()]
}

/** Called with the new list of names whenever a section is registered. */
export function onSectionsChanged (listener: (names: string[]) => void): void {
  listeners.add(listener)
}

/** A section's content is bounded: a huge value must not swamp the report. */
const MAX_CONTENT_CHARS = 256 * 1024

/** A section's content, bounded and masked: secret paths always, token shapes in its strings unless maskSectionText is off. */
function content (value: unknown): unknown {
  const { sectionText } = redactionSettings()
  if (typeof value === 'string') {
    if (value.length <= MAX_CONTENT_CHARS) return sectionText ? maskText(value) : value
    // Masked a little past the cut, so that no secret is cut in two.
    const window = value.slice(0, MAX_CONTENT_CHARS + 4096)
    return (sectionText ? maskText(window) : window).slice(0, MAX_CONTENT_CHARS) + `\n… (${value.length - MAX_CONTENT_CHARS} more characters)`
  }
  const json = safeJsonStringify(value, 0)
  if (json.length > MAX_CONTENT_CHARS) return `[value too large: ${json.length} characters of JSON, limit ${MAX_CONTENT_CHARS}]`
  return redactJson(JSON.parse(json), sectionText)
}

const MAX_ERROR_CHARS = 2000

/** Why a generator failed, in one bounded line; never throws (a thrown value's getters may). */
function failureText (err: unknown): string {
  let text: string
  try {
    text = err instanceof Error ? String(err.message) : String(err)
  } catch {
    try { text = Object.prototype.toString.call(err) } catch { text = 'an unreadable value' }
  }
  text = maskText(text.length > MAX_ERROR_CHARS ? text.slice(0, MAX_ERROR_CHARS) + '…' : text)
  return text
}

async function runOne (name: string, generator: SectionGenerator, timeoutMs: number): Promise<UserSection> {
  const timedOut = Symbol('timed out')
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(timedOut), timeoutMs)
      timer.unref()
    })
    const value = await Promise.race([Promise.resolve().then(generator), timeout])
    return { name, content: content(value), error: null }
  } catch (err) {
    if (err === timedOut) return { name, content: null, error: `timed out after ${timeoutMs} ms` }
    return { name, content: null, error: `the generator threw: ${failureText(err)}` }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The sections run synchronously, for a report written from an interrupt of
 * a thread busy in JavaScript: a generator that returns a promise cannot be
 * waited for there, and its section says why.
 */
export function runSectionsSync (asyncReason: string): UserSection[] {
  return [...generators].map(([name, generator]) => {
    try {
      const value = generator()
      if (value !== null && typeof (value as PromiseLike<unknown>)?.then === 'function') {
        Promise.resolve(value).catch(() => {}) // settles whenever the loop turns; nobody waits
        return { name, content: null, error: asyncReason }
      }
      return { name, content: content(value), error: null }
    } catch (err) {
      return { name, content: null, error: `the generator threw: ${failureText(err)}` }
    }
  })
}

export async function runSections (timeoutMs: number): Promise<UserSection[]> {
  return Promise.all([...generators].map(([name, generator]) => runOne(name, generator, timeoutMs)))
}

/** The sections as they stand when their thread cannot run them. */
export function unavailableSections (names: string[], reason: string): UserSection[] {
  return names.map(name => ({ name, content: null, error: reason }))
}
