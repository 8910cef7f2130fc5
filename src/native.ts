// Loads the addon: a prebuilt binary when one matches this Node, else the
// local build. A missing binary is one clear message, not a loader's trace.
import fs from 'node:fs'
import path from 'node:path'

export interface RawJsFrame { function: string, file: string, line: number, column: number }

export interface RawNativeFrame {
  address: string
  symbol: string
  module: string
  symbolOffset: number
  moduleOffset: number
  /** 0: from the interrupted context, 1: CFI, 2: frame pointer. */
  method: number
  /** The JavaScript function a frame in JIT code or the interpreter runs (code map). */
  javascript: RawJsFrame | null
}

export interface RawThread {
  tid: number
  name: string
  osState: string
  cpuUserUs: number
  cpuSystemUs: number
  isMain: boolean
  isWatchdog: boolean
  captured: boolean
  /** Read from /proc while it waited in a system call: the thread blocks signals. */
  fromProc: boolean
  missingReason: string
  interruptedUs: number
  hasIsolate: boolean
  /** worker_threads' threadId; null until the thread's isolate was met on its thread. */
  threadId: number | null
  workerName: string
  isolate: string
  vmState: string | null
  jsFrameCount: number
  jsRequested: boolean
  jsAnswered: boolean
  jsAnsweredAfterUs: number
  javascript: RawJsFrame[]
  /** V8's stack sample named by the code map, for a thread that did not answer. */
  sampledJavascript: RawJsFrame[]
  native: RawNativeFrame[]
}

export interface RawTrigger {
  kind: string
  detail: string
  coalesced: number
  /** `cli` (gmr <pid>): the file the report goes to instead, and its format ('' for the configured one). */
  outPath?: string
  format?: string
}

export interface RawCapture {
  startedUnixMs: number
  signalPhaseUs: number
  jsPhaseUs: number
  totalUs: number
  captureSignal: string | null
  trigger: RawTrigger
  threads: RawThread[]
}

export interface NativeConfig {
  /** Signal number; 0 for none. */
  signal: number
  /** Absolute path; '' for none. */
  triggerFile: string
  /** mtime polling of the trigger file; 0: inotify only. */
  pollIntervalMs: number
  jsTimeoutMs: number
  captureTimeoutMs: number
  /** 0: off. */
  stallThresholdMs: number
}

type Callback = (err: Error | null, capture: RawCapture | null) => void

export interface Addon {
  configure (config: NativeConfig): void
  /** The reportOnFatalSignal option: installs (or removes) the fatal-signal handlers. */
  configureFatal (config: { enabled: boolean, logDir: string, serviceName: string, nodeVersion: string }): void
  /** Main thread: triggered reports run `script` in an environment of their own. */
  prepareReporter (script: string, dataJson: string): void
  setReporterData (dataJson: string): void
  /** In the reporter environment: the capture it was made for. */
  takeReporterJob (): { capture: RawCapture, data: string } | null
  /** In the reporter environment, when done: its loop ends even with handles left open. */
  endReporter (): void
  /**
   * Main thread: a triggered report it picks up within pickupMs is handed to
   * onReport there (which must call reportDone when written), from its event
   * loop or, while it runs JavaScript, from an interrupt (fromInterrupt: the
   * report must be written synchronously); else a reporter environment
   * writes it.
   */
  attachMainReporter (onReport: (capture: RawCapture, fromInterrupt: boolean) => void, pickupMs: number): void
  reportDone (): void
  capture (options: { jsTimeoutMs: number, captureTimeoutMs: number }, callback: Callback): void
  /** A worker is starting: the watchdog meets its isolate while it runs. */
  meetNewThreads (): void
  reclaimSignal (): void
  /** The code map switch; every isolate follows. */
  setCodeMapEnabled (enabled: boolean): void
  codeMapStats (): { enabled: boolean, maps: number, events: number, pending: number, indexed: number, dropped: number, scripts: number, bytes: number }
  info (): { captureSignal: string | null, reportSignal: number, tid: number }
}

export const packageRoot = path.join(__dirname, '..')

let addon: Addon | undefined

// node-gyp-build's first choice, when nothing overrides it: looked for
// directly, node-gyp-build (2-3 ms of set-up) is loaded only otherwise.
function localBuild (): string | null {
  if (process.env.PREBUILDS_ONLY || process.env.GURU_MEDITATION_PREBUILD) return null
  const file = path.join(packageRoot, 'build', 'Release', 'guru_meditation.node')
  return fs.existsSync(file) ? file : null
}

export function loadAddon (): Addon {
  if (addon) return addon
  try {
    const local = localBuild()
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = (local ? require(local) : require('node-gyp-build')(packageRoot)) as Addon
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0]
    throw new Error(
      `guru-meditation: no native binary for Node ${process.version} (ABI ${process.versions.modules}, ` +
      `${process.platform}-${process.arch}): ${reason}. ` +
      'Build it with `npm rebuild guru-meditation` (approve its install script first if your npm asks).')
  }
  return addon
}
