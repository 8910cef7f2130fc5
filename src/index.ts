// The public API: setupAutorun, registerSection, generateReport, writeReport,
// and TextGuruMeditation for those who know oslo.reports.
import fs from 'node:fs'
import path from 'node:path'
import type { Configuration, Report } from './model'
import { loadAddon, type Addon, type RawCapture } from './native'
import { checkVersion, OptionError, resolveOptions, logDirWarning, type Format, type Options, type ResolvedOptions } from './options'
import type { LiveParts } from './report'
import { flattenConfig } from './sections/configuration'
import { staticPackage, type StaticPackage, type VersionInfo } from './sections/package'
import { onSectionsChanged, registerSection, runSections, runSectionsSync, sectionNames, type SectionGenerator } from './sections/user'
import type { ReporterData } from './reporter'

// What only reports need is loaded when the first report is made, not at
// require time: set-up stays quick.
/* eslint-disable @typescript-eslint/no-require-imports */
// A report written from an interrupt of the busy main thread must not land
// inside the first load of these modules, which it would find half
// initialized: the native side is told, and leaves such a report to the
// reporter environment.
let reportModulesLoaded = false
function loaded<T> (load: () => T): T {
  if (reportModulesLoaded) return load()
  const native = loadAddon()
  native.holdInterruptReports(true)
  try {
    const m = load()
    reportModulesLoaded = true
    return m
  } finally {
    native.holdInterruptReports(false)
  }
}
const reportModule = (): typeof import('./report') => loaded(() => require('./report'))
const outputModule = (): typeof import('./output') => loaded(() => require('./output'))
const activeResources = (): Record<string, number> => (require('./sections/green-threads') as typeof import('./sections/green-threads')).activeResources()
const runtimeConfig = (): Record<string, string> => (require('./sections/configuration') as typeof import('./sections/configuration')).runtimeConfig()
/* eslint-enable @typescript-eslint/no-require-imports */

export type { Options, Format, Report, VersionInfo, SectionGenerator }
export { OptionError, registerSection }

/** How long a capture waits for JS threads to give their stacks. */
const JS_TIMEOUT_MS = 200
/** How long a capture waits for all threads to answer the capture signal. */
const CAPTURE_TIMEOUT_MS = 200
/** How long a triggered report waits for this thread before a reporter environment writes it. */
const PICKUP_MS = 100

interface State {
  options: ResolvedOptions
  pkg: StaticPackage
  /** The configuration flattened once at setup, for reports the main thread cannot help with. */
  confSnapshot: Record<string, string>
}

let state: State | null = null

// Loading the addon on every thread that loads the library makes that
// thread's isolate known, so its stack can be asked for. Without a binary
// for this Node, require fails here with loadAddon's one message.

// Two copies of the library on one thread (two versions in one dependency
// tree) are one: a later copy hands its exports over to the first, so there
// is one watchdog, one signal handler, one set of sections (see the end).
const SHARED = Symbol.for('guru-meditation')
const earlier = (globalThis as Record<symbol, unknown>)[SHARED]

if (!earlier) loadAddon()

function addon (): Addon {
  return loadAddon()
}

function configuration (options: Pick<ResolvedOptions, 'conf' | 'secretKeys'>): Configuration {
  return { application: flattenConfig(options.conf, options.secretKeys), runtime: runtimeConfig() }
}

/** The thread that can set the library up: the process's main thread. */
function onMainThread (native: Addon): boolean {
  return native.info().tid === process.pid
}

/** The configuration now, or why not: the part of the live report both paths share. */
function liveConfiguration (options: ResolvedOptions): { configuration: Configuration, errors: string[] } {
  try {
    return { configuration: configuration(options), errors: [] }
  } catch (err) {
    return { configuration: { application: {}, runtime: {} }, errors: [`configuration: ${(err as Error).message}`] }
  }
}

/** Runs on the thread that called setupAutorun (or the API caller). */
/** This thread's active resources, for its Green Threads entry. */
function liveResources (): LiveParts['resources'] {
  return { tid: addon().info().tid, counts: activeResources() }
}

async function collectLive (options: ResolvedOptions, writtenBy: string): Promise<LiveParts> {
  const resources = liveResources()
  return { ...liveConfiguration(options), sections: await runSections(options.sectionTimeout), writtenBy, resources }
}

/** The live parts without waiting: for a report written from an interrupt. */
function collectLiveSync (options: ResolvedOptions): LiveParts {
  const reason = 'the main thread was busy running JavaScript: the report was written between two of its operations, where a promise cannot be waited for'
  return { ...liveConfiguration(options), sections: runSectionsSync(reason), writtenBy: 'main thread (interrupt: it was busy running JavaScript)', resources: liveResources() }
}

function writeLive (capture: RawCapture, current: State, live: LiveParts): void {
  const { buildReport, writeTriggeredReport } = reportModule()
  writeTriggeredReport(buildReport(capture, current.pkg, live), capture.trigger, current.options)
}

const reportFailed = (err: unknown): void => {
  process.stderr.write(`guru-meditation: the report failed: ${(err as Error)?.stack ?? String(err)}\n`)
}

// A triggered report is written here when this thread picks it up within
// PICKUP_MS: from its event loop when it is free (live configuration and
// user sections), or, when it is busy running JavaScript, from an interrupt
// between two of its operations: then synchronously, and nothing may throw
// into the interrupted code.
function writeTriggered (native: Addon, capture: RawCapture, fromInterrupt: boolean): void {
  const current = state
  if (!current) return native.reportDone()
  if (fromInterrupt) {
    try {
      writeLive(capture, current, collectLiveSync(current.options))
    } catch (err) {
      try { reportFailed(err) } catch {}
    } finally {
      native.reportDone()
    }
    return
  }
  collectLive(current.options, 'main thread (event loop)')
    .then(live => writeLive(capture, current, live))
    .catch(reportFailed)
    .finally(() => native.reportDone())
}

function reporterData ({ options, pkg, confSnapshot }: State): string {
  const { conf, secretKeys, ...rest } = options
  // The runtime part is left to the reporter (it is the same process):
  // computing it here would cost every start-up.
  const data: ReporterData = {
    options: rest,
    pkg,
    confSnapshot: { application: confSnapshot, runtime: {} },
    sectionNames: sectionNames(),
    pickupMs: PICKUP_MS
  }
  return JSON.stringify(data) // plain data: options without conf, strings
}

// libuv installs its own handler when the application listens on a signal,
// and restores the default action when the last listener goes: put ours
// back in front each time. Between libuv's restoring the default and our
// reclaiming, a signal would end the process: a listener of our own, which
// does nothing, keeps libuv from restoring it at all (unless the
// application removes all the signal's listeners, ours included: then it
// comes back at once).
const keepSignal = (): void => {}
let keptSignal: string | null = null

function keepListening (): void {
  const wanted = state?.options.signal?.name ?? null
  if (keptSignal === wanted) return
  if (keptSignal) process.off(keptSignal as NodeJS.Signals, keepSignal)
  keptSignal = wanted
  if (wanted) process.on(wanted as NodeJS.Signals, keepSignal)
}

function guardSignal (): void {
  const ours = (event: string | symbol): boolean => Boolean(state?.options.signal && event === state.options.signal.name)
  process.on('newListener', (event: string | symbol) => { if (ours(event)) addon().reclaimSignal() })
  process.on('removeListener', (event: string | symbol, listener: unknown) => {
    if (!ours(event)) return
    addon().reclaimSignal()
    if (listener === keepSignal) process.on(event as NodeJS.Signals, keepSignal)
  })
}

// A worker that never loads the library is met while it starts (its
// threadId, name and code map), not at the first report, when it may be
// idle or blocked in a native call. Workers started by workers are met at
// the first report.
function meetWorkers (native: Addon): void {
  process.on('worker', () => native.meetNewThreads())
}

/** Creates the trigger file if missing; true when this call created it. */
function ensureTriggerFile (file: string): boolean {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600))
    return true
  } catch (err) {
    // Already there: resolveOptions checked it is a regular file.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new OptionError('option fileEventHandler', `cannot create ${file}: ${(err as Error).message}`)
  }
}

/**
 * Installs the report triggers: the signal (SIGUSR2 by default) and, when
 * given, the trigger file. Reports then come even while this thread is stuck.
 * Calling it again applies the new options. Throws OptionError before
 * anything is installed; a previous setup then stays in force.
 */
export function setupAutorun (version?: VersionInfo, options: Options = {}): void {
  checkVersion(version)
  const resolved = resolveOptions(options)
  const native = addon()
  if (!onMainThread(native)) throw new Error('guru-meditation: setupAutorun must be called on the main thread')
  const pkg = staticPackage(version, resolved.serviceName, resolved.secretKeys)
  const confSnapshot = flattenConfig(resolved.conf, resolved.secretKeys)
  const created = resolved.fileEventHandler ? ensureTriggerFile(resolved.fileEventHandler) : false
  // The watchdog first: the reporter attaches to it.
  try {
    native.configure({
      signal: resolved.signal?.number ?? 0,
      triggerFile: resolved.fileEventHandler ?? '',
      pollIntervalMs: Math.round(resolved.fileEventHandlerInterval * 1000),
      jsTimeoutMs: JS_TIMEOUT_MS,
      captureTimeoutMs: CAPTURE_TIMEOUT_MS,
      stallThresholdMs: resolved.stallThreshold,
      maxHandles: resolved.greenThreadsLimit
    })
  } catch (err) {
    if (created) try { fs.unlinkSync(resolved.fileEventHandler as string) } catch {}
    throw err
  }
  native.setSwitches(resolved.codeMap, resolved.trackPromises)
  native.configureFatal({
    enabled: resolved.reportOnFatalSignal,
    logDir: resolved.logDir ?? '',
    serviceName: resolved.serviceName,
    nodeVersion: process.version
  })
  const unsafeDir = resolved.logDir && resolved.logDir !== state?.options.logDir ? logDirWarning(resolved.logDir) : null
  if (unsafeDir) try { fs.writeSync(2, unsafeDir) } catch {}
  const first = !state
  state = { options: resolved, pkg, confSnapshot }
  if (first) {
    native.prepareReporter(path.join(__dirname, 'reporter.js'), reporterData(state))
    native.attachMainReporter((capture, fromInterrupt) => writeTriggered(native, capture, fromInterrupt), PICKUP_MS)
    // A new section only changes the names: the snapshot is not flattened again.
    onSectionsChanged(() => { if (state) native.setReporterData(reporterData(state)) })
    guardSignal()
    meetWorkers(native)
  } else {
    native.setReporterData(reporterData(state))
  }
  keepListening()
}

function captureNow (options: ResolvedOptions): Promise<RawCapture> {
  return new Promise((resolve, reject) => {
    const settings = { jsTimeoutMs: JS_TIMEOUT_MS, captureTimeoutMs: CAPTURE_TIMEOUT_MS, maxHandles: options.greenThreadsLimit }
    addon().capture(settings, (err, capture) => {
      if (err || !capture) reject(err ?? new Error('guru-meditation: capture failed'))
      else resolve(capture)
    })
  })
}

async function reportNow (): Promise<{ report: Report, options: ResolvedOptions }> {
  const options = state?.options ?? resolveOptions({})
  const pkg = state?.pkg ?? staticPackage(undefined, options.serviceName)
  const [capture, live] = await Promise.all([captureNow(options), collectLive(options, 'caller')])
  return { report: reportModule().buildReport(capture, pkg, live), options }
}

/** generateReport's and writeReport's `format`, checked before any capture. */
function requestedFormat (options: { format?: Format } | undefined): Format | undefined {
  if (options === undefined) return undefined
  if (options === null || typeof options !== 'object') throw new OptionError('options', `must be an object like { format: 'json' }, got ${options === null ? 'null' : typeof options}`)
  const format: unknown = options.format
  if (format !== undefined && format !== 'text' && format !== 'json') {
    throw new OptionError('option format', `must be 'text' or 'json', got ${typeof format === 'string' ? JSON.stringify(format.slice(0, 60)) : typeof format}`)
  }
  return format
}

/** The report of this process now, as text or JSON. */
export async function generateReport (options?: { format?: Format }): Promise<string> {
  const format = requestedFormat(options)
  const { report, options: resolved } = await reportNow()
  return reportModule().render(report, format ?? resolved.format)
}

/**
 * Writes a report where a triggered one would go. Returns the file's path,
 * or null when it went to stderr.
 */
export async function writeReport (options?: { format?: Format }): Promise<string | null> {
  const format = requestedFormat(options)
  const { report, options: resolved } = await reportNow()
  const text = reportModule().render(report, format ?? resolved.format)
  return outputModule().writeReportText(text, resolved, new Date(report.package.generatedAt)).path
}

export const TextGuruMeditation = { setupAutorun, registerSection, generateReport, writeReport }

if (earlier) module.exports = earlier
else Object.defineProperty(globalThis, SHARED, { value: module.exports })
