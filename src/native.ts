// Loads the addon: the local build or a prebuilt binary, whichever is built
// for this Node's ABI. None is one clear message, not a loader's trace.
import fs from 'node:fs'
import path from 'node:path'
import type { GreenPromises, GreenTimers } from './model'
import { binaryAbi, binaryArch } from './util/elf-abi'
import { isMainThread } from './util/main-thread'

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
  /** Asleep in pthread_mutex_lock: the mutex and its owner's tid (glibc keeps it in the mutex). */
  lockWait: { address: string, ownerTid: number } | null
  /** worker_threads' threadId; null until the thread's isolate was met on its thread. */
  threadId: number | null
  workerName: string
  /** A worker's resourceLimits.maxOldGenerationSizeMb, read on its thread; 0 when not known. */
  maxOldGenerationMb: number
  /** Its heap figures as last recorded on its thread (native/memory/); null when never. */
  heap: RawHeap | null
  isolate: string
  vmState: string | null
  jsFrameCount: number
  jsRequested: boolean
  jsAnswered: boolean
  jsAnsweredAfterUs: number
  javascript: RawJsFrame[]
  /** The async functions awaiting below `javascript`, read when it answered; null when they could not be read safely. */
  asyncCallers: RawJsFrame[] | null
  /** V8's stack sample named by the code map, for a thread that did not answer. */
  sampledJavascript: RawJsFrame[]
  native: RawNativeFrame[]
}

/** One isolate's heap figures (native/memory/heap_figures.h), bytes. */
export interface RawHeap {
  /** When they were recorded: `gc` (after a collection), `report` (answering this capture), `earlier` (at an earlier interrupt: when the library met the thread, an earlier report). */
  source: 'report' | 'gc' | 'earlier'
  atUnixMs: number
  /** How long before the capture ended. */
  ageMs: number
  used: number
  total: number
  limit: number
  external: number
  spaces: Array<{ name: string, used: number, size: number }>
  /** Collections since the thread was met, and their pauses. */
  gcCount: number
  gcTotalMs: number
  lastGc: { kind: string, pauseMs: number, atUnixMs: number } | null
}

/** The process's memory and descriptors (native/util/proc.h); null: could not be read. */
export interface RawProcessMemory {
  rss: number | null
  peakRss: number | null
  swap: number | null
  rssAnon: number | null
  rssFile: number | null
  fds: number | null
  /** RLIMIT_NOFILE; null also when unlimited. */
  fdSoftLimit: number | null
  fdHardLimit: number | null
}

export interface RawTrigger {
  kind: string
  detail: string
  coalesced: number
  /** `cli` (gmr <pid>): the file the report goes to instead, and its format ('' for the configured one). */
  outPath?: string
  format?: string
  /** Why the main thread, which took the report, handed it to a reporter environment. */
  mainFailure?: string
  /** Why a reporter environment writes it: the main thread did not pick it up. */
  mainNotPickedUp?: string
}

/** One libuv handle of a JS thread's event loop (native/green/loop_walk.h). */
export interface RawHandle {
  type: string
  active: boolean
  ref: boolean
  closing: boolean
  fd: number
  local: string
  remote: string
  listening: boolean
  writeQueueBytes: number
  /** Timers: ms until due (negative: overdue); null when not active. */
  dueInMs: number | null
  repeatMs: number
  pid: number
  signum: number
  path: string
  /** Offset inside its thread's node::Environment (a handle Node embeds there); -1 when outside. */
  environmentOffset: number
}

export interface RawLoop {
  tid: number
  threadId: number | null
  activeHandles: number
  activeRequests: number
  /** How long ago the loop last read its clock (each turn, and on waking). */
  clockAgeMs: number
  /** Blocked in its own epoll: idle. */
  waiting: boolean
  handles: RawHandle[]
  /** Handles past the limit, counted only. */
  more: number
  /** Why the walk stopped early; '' when it did not. */
  problem: string
  /** Its isolate's pending promises; null when not tracked. */
  promises: GreenPromises | null
  /** Its JavaScript timers, soonest first; null when not tracked. */
  timers: GreenTimers | null
}

export interface RawCapture {
  /** A report the main thread's event loop took: its number, for mainReportEnded and commitMainReport. */
  job?: number
  startedUnixMs: number
  signalPhaseUs: number
  jsPhaseUs: number
  totalUs: number
  captureSignal: string | null
  trigger: RawTrigger
  threads: RawThread[]
  loops: RawLoop[]
  memory: RawProcessMemory
  /** The loaded objects as the symbolizer read them, lowest mapped first. */
  loadedObjects: RawLoadedObject[]
  /** A stall report's: the captures taken while the loop was not turning, oldest first, sampleIntervalMs apart. */
  earlier?: RawCapture[]
  sampleIntervalMs?: number
}

/** A loaded object (native/symbolize/symbolize.h, LoadedObject). */
export interface RawLoadedObject {
  path: string
  /** Load bias, hex: a frame's module offset is its address minus this. */
  base: string
  /** Its lowest mapped address, hex. */
  mapped: string
  /** GNU build ID, hex; null when it has none. */
  buildId: string | null
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
  /** Handles described per event loop in Green Threads. */
  maxHandles: number
}

type Callback = (err: Error | null, capture: RawCapture | null) => void

export interface Addon {
  configure (config: NativeConfig): void
  /** The reportOnFatalSignal option: installs (or removes) the fatal-signal handlers. Its destination is also the native fallback's. */
  configureFatal (config: { enabled: boolean, logDir: string, serviceName: string, nodeVersion: string }): void
  /** Main thread: triggered reports run `script` in an environment of their own. */
  prepareReporter (script: string, dataJson: string): void
  setReporterData (dataJson: string): void
  /** What setup gave the reporter (JSON, ReporterData), null before setup: for a report written on a worker. */
  reporterData (): string | null
  /** In the reporter environment: the capture it was made for. */
  takeReporterJob (): { capture: RawCapture, data: string } | null
  /** In the reporter environment, done with its job: null when the report is written, else why not (the native fallback then writes it). */
  finishReporterJob (error: string | null): void
  /** In the reporter environment, when done: its loop ends even with handles left open. */
  endReporter (): void
  /**
   * Main thread: a triggered report it picks up within pickupMs is handed to
   * onReport there, from its event loop (onReport must call mainReportEnded
   * when done) or, while it runs JavaScript, from an interrupt (fromInterrupt:
   * the report must be written synchronously; onReport returns true when
   * written, or why not); else a reporter environment writes it, as it does
   * one the main thread could not write.
   */
  attachMainReporter (onReport: (capture: RawCapture, fromInterrupt: boolean) => true | string | undefined, pickupMs: number): void
  /** Main thread: done with the report `job` its event loop took (capture.job); whyNot when it could not write it (a reporter environment then does). */
  mainReportEnded (job: number, whyNot?: string): void
  /** Main thread, before writing the report `job` its event loop took: true when it is still its own to write (and stays so), false when the watchdog took it back. */
  commitMainReport (job: number): boolean
  /** How long the event loop has to finish a report it took, sections included. */
  setMainReportTimeout (ms: number): void
  /** A test-only hook's value (native/util/test_hooks.h); 0 in a release build. */
  testHook (name: string): number
  /** Waits with poll(2) until fd can take more bytes: true, or false after timeoutMs. */
  waitWritable (fd: number, timeoutMs: number): boolean
  capture (options: { jsTimeoutMs: number, captureTimeoutMs: number, maxHandles: number }, callback: Callback): void
  /** A worker came online: the watchdog meets its isolate while it runs. */
  meetNewThreads (): void
  reclaimSignal (): void
  /** The code map and promise tracking switches; every isolate follows. */
  setSwitches (codeMap: boolean, trackPromises: boolean | 'sites'): void
  codeMapStats (): { enabled: boolean, maps: number, events: number, pending: number, indexed: number, dropped: number, scripts: number, bytes: number }
  info (): { captureSignal: string | null, reportSignal: number, tid: number, knownIsolates: number, heapSizeLimit: number, testHooks: boolean, testLateCaptureHandlers?: number, testFirstContacts?: number }
}

export const packageRoot = path.join(__dirname, '..')

let addon: Addon | undefined

interface Found { file: string, abi: number | null, arch: string | null }

// node-gyp-build's places and overrides, in its order: <NAME>_PREBUILD
// stands for the package directory, PREBUILDS_ONLY skips the local build.
// Each binary's ABI is known before it is loaded: loading one for another
// Node can end the process, and node-gyp-build loads a local build whatever
// its ABI. A prebuilt binary's name says it (prebuildify's abi<N> tag, as
// node-gyp-build trusts it); the local build's is read from its mark
// (binaryAbi). Only until one matches: the others are read for the message.
function* binaries (): Generator<Found> {
  const dir = process.env.GURU_MEDITATION_PREBUILD || packageRoot
  const local = path.join(dir, 'build', 'Release', 'guru_meditation.node')
  if (!process.env.PREBUILDS_ONLY && fs.existsSync(local)) yield { file: local, abi: binaryAbi(local), arch: binaryArch(local) }
  const prebuilds = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`)
  let names: string[] = []
  try { names = fs.readdirSync(prebuilds).filter(f => f.endsWith('.node')).sort() } catch {}
  for (const name of names) {
    const file = path.join(prebuilds, name)
    const tag = /\.abi(\d+)\.node$/.exec(name)
    yield { file, abi: tag ? Number(tag[1]) : binaryAbi(file), arch: binaryArch(file) }
  }
}

// A binary of another architecture: a local build made on the host and
// mounted into a container of another one (Docker on Apple silicon) would
// otherwise hide the prebuilt binary, and fail to load saying only "No such
// file". One whose architecture is unknown is tried as before.
const otherArch = (f: Found): boolean => f.arch !== null && f.arch !== process.arch

function noBinary (found: Found[], reason: string): Error {
  const list = found.length === 0
    ? 'none'
    : found.map(f => `${path.relative(packageRoot, f.file) || f.file} (${f.abi === null ? 'ABI unknown: built before binaries were marked with it' : `ABI ${f.abi}`}${otherArch(f) ? `, built for ${f.arch}` : ''})`).join(', ')
  return new Error(
    `guru-meditation: no native binary for Node ${process.version} (ABI ${process.versions.modules}, ` +
    `${process.platform}-${process.arch}): ${reason}. Binaries found: ${list}. ` +
    'Build one for this Node with `npm rebuild guru-meditation` (a C++ compiler and Python are needed; ' +
    'if your npm holds back install scripts, approve it first: `npm install-scripts approve guru-meditation`).')
}

// A worker that loads another copy of the library than the main thread's
// (two versions in one tree) loads the binary already in the process: one
// native instance, with one watchdog and one set of signal handlers. (Two
// copies on one thread are one already: see index.ts.) Only in workers:
// the main thread loads first, and /proc/self/maps costs half a millisecond.
function binaryInProcess (): string | null {
  if (isMainThread()) return null
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8')
    return /^\S+ \S+ \S+ \S+ \S+ +(\/.*\/(?:guru_meditation|guru-meditation\.abi\d+)\.node)$/m.exec(maps)?.[1] ?? null
  } catch {
    return null
  }
}

// Node 20.16 gave process.getBuiltinModule, which a worker that never
// loaded the library needs to tell its threadId (native/capture/
// thread_identity.cc): without it, workers would be listed unknown. Checked
// by the feature, named by the version (package.json's engines).
function checkNodeVersion (): void {
  if (typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule === 'function') return
  throw new Error(`guru-meditation: needs Node.js 20.16 or later: it uses process.getBuiltinModule, which this Node (${process.version}) does not have`)
}

export function loadAddon (): Addon {
  if (addon) return addon
  checkNodeVersion()
  const inProcess = binaryInProcess()
  if (inProcess) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(inProcess) as Addon
    return addon
  }
  const found: Found[] = []
  let match: Found | undefined
  for (const f of binaries()) {
    found.push(f)
    if (f.abi === Number(process.versions.modules) && !otherArch(f)) { match = f; break }
  }
  if (!match) {
    const abiOnly = found.some(f => f.abi === Number(process.versions.modules))
    throw noBinary(found, abiOnly ? `none is built for this ABI on ${process.arch}` : 'none is built for this ABI')
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(match.file) as Addon
  } catch (err) {
    throw noBinary(found, `${path.relative(packageRoot, match.file)} does not load (${(err as Error).message.split('\n')[0]})`)
  }
  return addon
}
