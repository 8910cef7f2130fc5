// Options and their environment variables, checked once at setup: a bad
// value is an error naming the option or variable, never a surprise later.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

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
  sectionTimeout?: number
  codeMap?: boolean
  stallThreshold?: number | false
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
  sectionTimeout: number
  /** Name JavaScript frames of threads that cannot answer (V8 code events). */
  codeMap: boolean
  /** ms an event loop may go without turning before a report is written on its own; 0: off. */
  stallThreshold: number
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
  reportOnFatalSignal: 'GMR_REPORT_ON_FATAL_SIGNAL'
}

const KNOWN = new Set(['serviceName', 'logDir', 'fileEventHandler', 'fileEventHandlerInterval',
  'signal', 'format', 'conf', 'secretKeys', 'sectionTimeout', 'codeMap', 'stallThreshold',
  'reportOnFatalSignal'])

// Signals that cannot be caught, or whose default meaning (a fault) must not
// be taken over by a report.
const FORBIDDEN_SIGNALS = new Set(['SIGKILL', 'SIGSTOP', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE',
  'SIGABRT', 'SIGTRAP', 'SIGSYS', 'SIGCHLD', 'SIGCONT', 'SIGPIPE'])

const DEFAULT_SECTION_TIMEOUT = 2000
// Below this a busy but healthy loop (a long JSON.parse) would be reported.
const MIN_STALL_THRESHOLD = 50
const MAX_STALL_THRESHOLD = 3_600_000
const MAX_SECTION_TIMEOUT = 60_000

/** Where each value came from, for error messages: the option or its variable. */
interface Source { name: string, value: unknown }

function source (options: Options, key: keyof Options, env: NodeJS.ProcessEnv): Source | null {
  if (options[key] !== undefined) return { name: `option ${key}`, value: options[key] }
  const variable = ENV[key]
  if (variable && env[variable] !== undefined) return { name: `environment variable ${variable}`, value: env[variable] }
  return null
}

function nonEmptyString (s: Source): string {
  if (typeof s.value !== 'string') throw new OptionError(s.name, `must be a string, got ${describe(s.value)}`)
  if (s.value.trim() === '') throw new OptionError(s.name, 'must not be empty')
  if (s.value.includes('\0')) throw new OptionError(s.name, 'must not contain a NUL character')
  return s.value
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`
  return typeof value
}

function number (s: Source, min: number, max: number, integer: boolean): number {
  let n: number
  if (typeof s.value === 'number') n = s.value
  else if (typeof s.value === 'string' && s.value.trim() !== '' && !isNaN(Number(s.value))) n = Number(s.value)
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

function parseSignal (s: Source): ResolvedOptions['signal'] {
  const v = s.value
  if (v === false || v === 'none' || v === 'false' || v === '0') return null
  const signals = os.constants.signals as Record<string, number>
  let name: string | undefined
  if (typeof v === 'number') {
    name = Object.keys(signals).find(k => signals[k] === v)
  } else if (typeof v === 'string' && v.trim() !== '') {
    const upper = v.trim().toUpperCase()
    name = upper.startsWith('SIG') ? upper : `SIG${upper}`
    if (!(name in signals)) name = undefined
  }
  if (!name) throw new OptionError(s.name, `is not a signal name (like 'SIGUSR2'), false or 'none': got ${describe(v)}`)
  if (FORBIDDEN_SIGNALS.has(name)) throw new OptionError(s.name, `${name} cannot be used for reports`)
  return { name, number: signals[name] }
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
  return dir
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
  if (!st) {
    const dir = path.dirname(file)
    if (!fs.existsSync(dir)) throw new OptionError(s.name, `directory ${dir} does not exist`)
  }
  return file
}

/** ms, or false / 0 / 'off' for none. */
function stallThreshold (s: Source): number {
  if (s.value === false || s.value === 0 || s.value === '0' || s.value === 'off' || s.value === 'false') return 0
  return number(s, MIN_STALL_THRESHOLD, MAX_STALL_THRESHOLD, true)
}

function secretKeys (s: Source): Array<string | RegExp> {
  if (!Array.isArray(s.value)) throw new OptionError(s.name, `must be an array of strings or RegExps, got ${describe(s.value)}`)
  for (const k of s.value) {
    if (!(k instanceof RegExp) && (typeof k !== 'string' || k === '')) {
      throw new OptionError(s.name, `entries must be non-empty strings or RegExps, got ${describe(k)}`)
    }
  }
  return [...s.value]
}

/** Checks everything before anything is installed. Throws OptionError. */
export function resolveOptions (options: Options = {}, env: NodeJS.ProcessEnv = process.env): ResolvedOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new OptionError('options', `must be an object, got ${describe(options)}`)
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new OptionError(`option ${key}`, `unknown option (known: ${[...KNOWN].join(', ')})`)
  }
  const get = (key: keyof Options): Source | null => source(options, key, env)

  const serviceNameSrc = get('serviceName')
  let serviceName = defaultServiceName()
  if (serviceNameSrc) {
    serviceName = nonEmptyString(serviceNameSrc)
    if (/[/\\]/.test(serviceName)) throw new OptionError(serviceNameSrc.name, 'must not contain a path separator')
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
  const fatalSrc = get('reportOnFatalSignal')
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
    reportOnFatalSignal: fatalSrc ? boolean(fatalSrc) : false
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

/** The package.json nearest above the entry script: the application, not this library. */
export function applicationPackage (): { name: string, version: string } | null {
  const entry = process.argv[1]
  if (!entry) return null
  let dir = path.dirname(path.resolve(entry))
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
      if (pkg && typeof pkg.name === 'string') return { name: pkg.name, version: String(pkg.version ?? '') }
    } catch {}
    const parent = path.dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}
