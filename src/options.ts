// Options and their environment variables, checked once at setup: a bad
// value is an error naming the option or variable, never a surprise later.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { applicationPackage } from './util/application'

export type Format = 'text' | 'json'

export interface Options {
  serviceName?: string
  logDir?: string
  fileEventHandler?: string
  fileEventHandlerInterval?: number
  signal?: string | number | false
  format?: Format
  conf?: unknown
  secretKeys?: Array<string | RegExp>
  maskSectionText?: boolean
  sectionTimeout?: number
  codeMap?: boolean
  stallThreshold?: number | false
  greenThreadsLimit?: number
  trackPromises?: boolean | 'sites'
  reportOnFatalSignal?: boolean
}

export interface ResolvedOptions {
  serviceName: string
  logDir: string | null
  fileEventHandler: string | null
  /** Seconds between mtime polls of the trigger file; 0: inotify only. */
  fileEventHandlerInterval: number
  signal: { name: string, number: number } | null
  format: Format
  conf: unknown
  secretKeys: Array<string | RegExp>
  /** Token shapes masked in user sections' strings (secret keys in their content always are). */
  maskSectionText: boolean
  sectionTimeout: number
  /** Name JavaScript frames of threads that cannot answer (V8 code events). */
  codeMap: boolean
  /** ms an event loop may go without turning before a report is written on its own; 0: off. */
  stallThreshold: number
  /** Handles listed per event loop in Green Threads; the rest are counted. */
  greenThreadsLimit: number
  /**
   * Pending promises in Green Threads (Node's promiseHooks: costs every promise).
   * true: counts and ages; 'sites': also each one's creating function, at a higher cost.
   */
  trackPromises: boolean | 'sites'
  /** A native-stacks report on SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT, then the signal goes on. */
  reportOnFatalSignal: boolean
}

export class OptionError extends Error {
  readonly option: string
  constructor (option: string, message: string) {
    super(`guru-meditation: ${option}: ${message}`)
    this.name = 'GuruMeditationOptionError'
    this.option = option
  }
}

const ENV: Record<string, string> = {
  serviceName: 'GMR_SERVICE_NAME',
  logDir: 'GMR_LOG_DIR',
  fileEventHandler: 'GMR_FILE_TRIGGER',
  fileEventHandlerInterval: 'GMR_FILE_TRIGGER_INTERVAL',
  signal: 'GMR_SIGNAL',
  format: 'GMR_FORMAT',
  sectionTimeout: 'GMR_SECTION_TIMEOUT',
  codeMap: 'GMR_CODE_MAP',
  stallThreshold: 'GMR_STALL_THRESHOLD',
  greenThreadsLimit: 'GMR_GREEN_THREADS_LIMIT',
  trackPromises: 'GMR_TRACK_PROMISES',
  reportOnFatalSignal: 'GMR_REPORT_ON_FATAL_SIGNAL',
  maskSectionText: 'GMR_MASK_SECTION_TEXT'
}

const KNOWN = new Set(['serviceName', 'logDir', 'fileEventHandler', 'fileEventHandlerInterval',
  'signal', 'format', 'conf', 'secretKeys', 'sectionTimeout', 'codeMap', 'stallThreshold',
  'greenThreadsLimit', 'trackPromises', 'maskSectionText',
  'reportOnFatalSignal'])

// Signals a report must not take, by number (aliases such as SIGIOT are
// the same signal), with why.
const FORBIDDEN_SIGNALS = new Map<number, string>()
for (const [names, why] of [
  [['SIGKILL', 'SIGSTOP'], 'cannot be caught'],
  [['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT', 'SIGTRAP', 'SIGSYS'], 'reports a fault, whose default action must stay'],
  [['SIGCHLD', 'SIGCONT', 'SIGPIPE'], 'is sent by the system in normal operation'],
  // With no listener of the application's, a report handler would stop
  // them from ending the process.
  [['SIGINT', 'SIGTERM'], 'is how a process is asked to end'],
  [['SIGPROF'], "is V8's CPU profiler's"]
] as const) {
  for (const name of names) {
    const n = (os.constants.signals as Record<string, number>)[name]
    if (n !== undefined) FORBIDDEN_SIGNALS.set(n, why)
  }
}
// File systems where a trigger file's changes are not seen, or a report
// file cannot be written (statfs f_type).
const PSEUDO_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'], [0x74726163, 'tracefs'], [0x1cd1, 'devpts'], [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf']
])
// File names are `<serviceName>_gurumeditation_<14 digits>_<n>`: this
// keeps them under NAME_MAX (255 bytes).
const MAX_SERVICE_NAME = 200

const DEFAULT_SECTION_TIMEOUT = 2000
// Below this a busy but healthy loop (a long JSON.parse) would be reported.
const MIN_STALL_THRESHOLD = 50
const MAX_STALL_THRESHOLD = 3_600_000
const MAX_SECTION_TIMEOUT = 60_000
// Enough for a busy server's sockets to show their pattern; a report stays readable.
const DEFAULT_GREEN_THREADS_LIMIT = 50
const MAX_GREEN_THREADS_LIMIT = 10_000

/** Where each value came from, for error messages: the option or its variable. */
interface Source { name: string, value: unknown }

function source (options: Options, key: keyof Options, env: NodeJS.ProcessEnv): Source | null {
  if (options[key] !== undefined) return { name: `option ${key}`, value: options[key] }
  const variable = ENV[key]
  if (variable && env[variable] !== undefined) return { name: `environment variable ${variable}`, value: env[variable] }
  return null
}

/** The options object, read once: a getter or Proxy trap that throws is an error naming the option. */
function readOptions (options: Options): Options {
  if (options === null || typeof options !== 'object' || describe(options) === 'an array') {
    throw new OptionError('options', `must be an object, got ${describe(options)}`)
  }
  let keys: string[]
  try {
    keys = Object.keys(options)
  } catch (err) {
    throw new OptionError('options', `cannot be read: ${errorText(err)}`)
  }
  const copy: Record<string, unknown> = {}
  for (const key of keys) {
    if (!KNOWN.has(key)) throw new OptionError(`option ${key}`, `unknown option (known: ${[...KNOWN].join(', ')})`)
    try {
      copy[key] = (options as Record<string, unknown>)[key]
    } catch (err) {
      throw new OptionError(`option ${key}`, `cannot be read: ${errorText(err)}`)
    }
  }
  return copy as Options
}

function errorText (err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err)
  } catch {
    return 'unknown error'
  }
}

function nonEmptyString (s: Source): string {
  if (typeof s.value !== 'string') throw new OptionError(s.name, `must be a string, got ${describe(s.value)}`)
  if (s.value.trim() === '') throw new OptionError(s.name, 'must not be empty')
  if (s.value.includes('\0')) throw new OptionError(s.name, 'must not contain a NUL character')
  return s.value
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`
  try {
    if (Array.isArray(value)) return 'an array'
  } catch {} // a revoked Proxy
  return typeof value
}

// Decimal only: Number() would also take `0x10`, `0b1` and `Infinity`.
const DECIMAL = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?\s*$/i

function number (s: Source, min: number, max: number, integer: boolean): number {
  let n: number
  if (typeof s.value === 'number') n = s.value
  else if (typeof s.value === 'string' && DECIMAL.test(s.value)) n = Number(s.value)
  else throw new OptionError(s.name, `must be a number, got ${describe(s.value)}`)
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new OptionError(s.name, `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${describe(s.value)}`)
  }
  return n
}

function boolean (s: Source): boolean {
  if (typeof s.value === 'boolean') return s.value
  if (s.value === '1' || s.value === 'true') return true
  if (s.value === '0' || s.value === 'false') return false
  throw new OptionError(s.name, `must be true or false (1 or 0 in the environment), got ${describe(s.value)}`)
}

function trackPromises (s: Source): boolean | 'sites' {
  if (s.value === 'sites') return 'sites'
  if (typeof s.value === 'boolean') return s.value
  if (s.value === '1' || s.value === 'true') return true
  if (s.value === '0' || s.value === 'false') return false
  throw new OptionError(s.name, `must be true, false or 'sites' (1, 0 or sites in the environment), got ${describe(s.value)}`)
}

function parseSignal (s: Source): ResolvedOptions['signal'] {
  const v = s.value
  if (v === false || v === 'none' || v === 'false' || v === '0') return null
  const signals = os.constants.signals as Record<string, number>
  let name: string | undefined
  if (typeof v === 'number' || (typeof v === 'string' && /^[1-9]\d*$/.test(v.trim()))) {
    // A number, also as an environment variable's text (GMR_SIGNAL=12).
    name = Object.keys(signals).find(k => signals[k] === Number(v))
  } else if (typeof v === 'string' && v.trim() !== '') {
    const upper = v.trim().toUpperCase()
    name = upper.startsWith('SIG') ? upper : `SIG${upper}`
    if (!(name in signals)) name = undefined
  }
  if (!name) throw new OptionError(s.name, `is not a signal name (like 'SIGUSR2'), false or 'none': got ${describe(v)}`)
  const number = signals[name]
  // The first name of a number is its usual one (SIGABRT, not SIGIOT).
  const usual = Object.keys(signals).find(k => signals[k] === number) ?? name
  const why = FORBIDDEN_SIGNALS.get(number)
  if (why) throw new OptionError(s.name, `${name}${usual !== name ? ` (${usual})` : ''} cannot be used for reports: it ${why}`)
  return { name: usual, number }
}

function existingDirectory (s: Source): string {
  const dir = path.resolve(nonEmptyString(s))
  let st: fs.Stats
  try {
    st = fs.statSync(dir)
  } catch (err) {
    throw new OptionError(s.name, `directory ${dir} does not exist (${(err as NodeJS.ErrnoException).code})`)
  }
  if (!st.isDirectory()) throw new OptionError(s.name, `${dir} is not a directory`)
  const pseudo = pseudoFileSystem(dir)
  if (pseudo) throw new OptionError(s.name, `${dir} is on a ${pseudo} file system, where reports cannot be written`)
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK)
  } catch (err) {
    throw new OptionError(s.name, `directory ${dir} is not writable (${(err as NodeJS.ErrnoException).code})`)
  }
  return dir
}

/**
 * Why logDir is unsafe for reports, or null: in a directory others can
 * write without the sticky bit, anyone can remove or replace a report (its
 * own mode does not matter there). Said once at setup; reports still go there.
 */
export function logDirWarning (dir: string): string | null {
  let st: fs.Stats
  try { st = fs.statSync(dir) } catch { return null }
  if ((st.mode & 0o002) === 0 || (st.mode & 0o1000) !== 0) return null
  return `guru-meditation: logDir ${dir} is writable by others without the sticky bit (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): anyone can remove or replace its reports (chmod o-w or +t)\n`
}

/** The name of the kernel's pseudo file system path is on, or null. */
function pseudoFileSystem (p: string): string | null {
  try {
    return PSEUDO_FILE_SYSTEMS.get(fs.statfsSync(p).type) ?? null
  } catch {
    return null
  }
}

// The trigger file must be a regular file we can stat; its directory must
// exist. A symlink is refused: its target could change under us.
function triggerFile (s: Source): string {
  const file = path.resolve(nonEmptyString(s))
  let st: fs.Stats | null = null
  try {
    st = fs.lstatSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new OptionError(s.name, `cannot use ${file}: ${(err as Error).message}`)
    }
  }
  if (st?.isSymbolicLink()) throw new OptionError(s.name, `${file} is a symbolic link; give the real path`)
  if (st && !st.isFile()) throw new OptionError(s.name, `${file} is not a regular file`)
  const dir = path.dirname(file)
  if (!st && !fs.existsSync(dir)) throw new OptionError(s.name, `directory ${dir} does not exist`)
  const pseudo = pseudoFileSystem(dir)
  if (pseudo) throw new OptionError(s.name, `${file} is on a ${pseudo} file system, where its changes are not seen`)
  return file
}

/** ms, or false / 0 / 'off' for none. */
function stallThreshold (s: Source): number {
  if (s.value === false || s.value === 0 || s.value === '0' || s.value === 'off' || s.value === 'false') return 0
  return number(s, MIN_STALL_THRESHOLD, MAX_STALL_THRESHOLD, true)
}

function secretKeys (s: Source): Array<string | RegExp> {
  if (describe(s.value) !== 'an array') throw new OptionError(s.name, `must be an array of strings or RegExps, got ${describe(s.value)}`)
  let keys: unknown[]
  try {
    keys = [...(s.value as unknown[])]
  } catch (err) {
    throw new OptionError(s.name, `cannot be read: ${errorText(err)}`)
  }
  return keys.map((k) => {
    if (typeof k === 'string' && k !== '') return k
    let regexp = false
    try { regexp = k instanceof RegExp } catch {}
    if (!regexp) throw new OptionError(s.name, `entries must be non-empty strings or RegExps, got ${describe(k)}`)
    // A plain copy, read now: a report tests it mid-operation, where a
    // subclass's methods or a pattern's getters must not run.
    try {
      const r = k as RegExp
      return new RegExp(String(r.source), String(r.flags).replace(/[gy]/g, ''))
    } catch (err) {
      throw new OptionError(s.name, `cannot be read: ${errorText(err)}`)
    }
  })
}

/** Checks everything before anything is installed. Throws OptionError. */
export function resolveOptions (given: Options = {}, env: NodeJS.ProcessEnv = process.env): ResolvedOptions {
  const options = readOptions(given)
  const get = (key: keyof Options): Source | null => source(options, key, env)

  const serviceNameSrc = get('serviceName')
  let serviceName = defaultServiceName()
  if (serviceNameSrc) {
    serviceName = nonEmptyString(serviceNameSrc)
    if (/[/\\]/.test(serviceName)) throw new OptionError(serviceNameSrc.name, 'must not contain a path separator')
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(serviceName)) throw new OptionError(serviceNameSrc.name, 'must not contain control characters')
    const bytes = Buffer.byteLength(serviceName)
    if (bytes > MAX_SERVICE_NAME) throw new OptionError(serviceNameSrc.name, `must be at most ${MAX_SERVICE_NAME} bytes in UTF-8, got ${bytes}`)
  } else {
    serviceName = truncateUtf8(serviceName, MAX_SERVICE_NAME)
  }

  const formatSrc = get('format')
  let format: Format = 'text'
  if (formatSrc) {
    if (formatSrc.value !== 'text' && formatSrc.value !== 'json') {
      throw new OptionError(formatSrc.name, `must be 'text' or 'json', got ${describe(formatSrc.value)}`)
    }
    format = formatSrc.value
  }

  const signalSrc = get('signal')
  const intervalSrc = get('fileEventHandlerInterval')
  const timeoutSrc = get('sectionTimeout')
  const logDirSrc = get('logDir')
  const triggerSrc = get('fileEventHandler')
  const codeMapSrc = get('codeMap')
  const stallSrc = get('stallThreshold')
  const greenLimitSrc = get('greenThreadsLimit')
  const trackSrc = get('trackPromises')
  if (intervalSrc && !triggerSrc) throw new OptionError(intervalSrc.name, 'has no effect without a trigger file (fileEventHandler or GMR_FILE_TRIGGER)')
  const fatalSrc = get('reportOnFatalSignal')
  const maskSectionTextSrc = get('maskSectionText')
  const keysSrc = options.secretKeys !== undefined ? { name: 'option secretKeys', value: options.secretKeys } : null

  return {
    serviceName,
    logDir: logDirSrc ? existingDirectory(logDirSrc) : null,
    fileEventHandler: triggerSrc ? triggerFile(triggerSrc) : null,
    fileEventHandlerInterval: intervalSrc ? number(intervalSrc, 0.01, 86_400, false) : 0,
    signal: signalSrc ? parseSignal(signalSrc) : { name: 'SIGUSR2', number: os.constants.signals.SIGUSR2 },
    format,
    conf: options.conf,
    secretKeys: keysSrc ? secretKeys(keysSrc) : [],
    sectionTimeout: timeoutSrc ? number(timeoutSrc, 1, MAX_SECTION_TIMEOUT, true) : DEFAULT_SECTION_TIMEOUT,
    codeMap: codeMapSrc ? boolean(codeMapSrc) : true,
    stallThreshold: stallSrc ? stallThreshold(stallSrc) : 0,
    greenThreadsLimit: greenLimitSrc ? number(greenLimitSrc, 1, MAX_GREEN_THREADS_LIMIT, true) : DEFAULT_GREEN_THREADS_LIMIT,
    trackPromises: trackSrc ? trackPromises(trackSrc) : false,
    reportOnFatalSignal: fatalSrc ? boolean(fatalSrc) : false,
    maskSectionText: maskSectionTextSrc ? boolean(maskSectionTextSrc) : true
  }
}

/** The longest prefix of s that is at most max bytes in UTF-8, whole characters only. */
function truncateUtf8 (s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s
  let out = ''
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break
    out += ch
  }
  return out
}

/** setupAutorun's first argument: oslo's version object, `{ name, version }`, a string, or nothing. */
export function checkVersion (version: unknown): void {
  if (version === undefined || version === null || typeof version === 'string') return
  if (typeof version !== 'object' || Array.isArray(version)) {
    throw new OptionError('version', `must be a string or an object like { product, vendor, version }, got ${describe(version)}`)
  }
  // An option put in the first argument would be ignored without a word.
  let keys: string[] = []
  try { keys = Object.keys(version) } catch {}
  const misplaced = keys.find(key => KNOWN.has(key))
  if (misplaced) {
    throw new OptionError(`version ${misplaced}`, `is an option: options go in setupAutorun's second argument, setupAutorun(version, { ${misplaced}: … })`)
  }
  for (const key of ['product', 'vendor', 'version', 'name']) {
    let value: unknown
    try {
      value = (version as Record<string, unknown>)[key]
    } catch (err) {
      throw new OptionError(`version ${key}`, `cannot be read: ${errorText(err)}`)
    }
    if (value !== undefined && value !== null && typeof value !== 'string' && typeof value !== 'function') {
      throw new OptionError(`version ${key}`, `must be a string or a function returning one, got ${describe(value)}`)
    }
  }
}

/** The application's package name (the package holding the entry script), else the script's basename. */
export function defaultServiceName (): string {
  const app = applicationPackage()
  if (app?.name) return app.name.replace(/^@[^/]+\//, '')
  const entry = process.argv[1]
  if (entry) return path.basename(entry).replace(/\.[cm]?[jt]s$/, '') || 'node'
  return 'node'
}
