// The async functions awaiting below the running JavaScript: the route into
// an `async` function that is busy now. V8 gives them to an Error's stack
// (Node's `at async handler (routes.js:12)` frames) but not to
// StackTrace::CurrentStackTrace, which the capture uses (nodejs/node#50056);
// so they are read here, on the thread itself, from Error.captureStackTrace
// with structured call sites. The application's Error.prepareStackTrace and
// stackTraceLimit are put back as they were; an accessor there is the
// application's code and is never run: then no callers are read.
import { types } from 'node:util'
import type { JsFrame } from './model'

interface CallSite {
  isAsync?: () => boolean
  getFunctionName: () => string | null
  getFileName: () => string | undefined | null
  getLineNumber: () => number | null
  getColumnNumber: () => number | null
}

const MAX_FRAMES = 200

/** Plain writable data properties only: anything else is left alone. */
function plainData (name: 'prepareStackTrace' | 'stackTraceLimit'): boolean {
  const d = Object.getOwnPropertyDescriptor(Error, name)
  return d === undefined ? Object.isExtensible(Error) : ('value' in d && d.writable === true && d.configurable === true)
}

/** The async callers of the code running on this thread now, innermost first; null when they cannot be read safely. */
export function asyncCallers (): JsFrame[] | null {
  // An Error the application replaced with a Proxy would run its traps.
  if (typeof Error !== 'function' || types.isProxy(Error)) return null
  if (!plainData('prepareStackTrace') || !plainData('stackTraceLimit')) return null
  const had = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace')
  const limit = Object.getOwnPropertyDescriptor(Error, 'stackTraceLimit')
  const holder: { stack?: unknown } = {}
  try {
    Object.defineProperty(Error, 'stackTraceLimit', { value: MAX_FRAMES, writable: true, configurable: true, enumerable: limit?.enumerable ?? true })
    Object.defineProperty(Error, 'prepareStackTrace', {
      value: (_: unknown, sites: CallSite[]): JsFrame[] => sites
        .filter(s => typeof s.isAsync === 'function' && s.isAsync())
        .map(s => ({ function: s.getFunctionName() ?? '', file: s.getFileName() ?? '', line: s.getLineNumber() ?? 0, column: s.getColumnNumber() ?? 0 })),
      writable: true,
      configurable: true,
      enumerable: false
    })
    Error.captureStackTrace(holder)
    const frames = holder.stack
    return Array.isArray(frames) ? frames as JsFrame[] : null
  } catch {
    return null
  } finally {
    if (had) Object.defineProperty(Error, 'prepareStackTrace', had)
    else delete (Error as { prepareStackTrace?: unknown }).prepareStackTrace
    if (limit) Object.defineProperty(Error, 'stackTraceLimit', limit)
    else delete (Error as { stackTraceLimit?: unknown }).stackTraceLimit
  }
}
