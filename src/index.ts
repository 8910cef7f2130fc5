// The public API: setupAutorun, registerSection, generateReport, writeReport,
// and TextGuruMeditation for those who know oslo.reports.
import fs from 'node:fs'
import path from 'node:path'
import type { Configuration, Report } from './model'
import { loadAddon, type Addon, type RawCapture } from './native'
import { OptionError, resolveOptions, type Format, type Options, type ResolvedOptions } from './options'
import type { LiveParts } from './report'
import { flattenConfig } from './sections/configuration'
import { staticPackage, type StaticPackage, type VersionInfo } from './sections/package'
import { onSectionsChanged, registerSection, runSections, runSectionsSync, sectionNames, type SectionGenerator } from './sections/user'
import type { ReporterData } from './reporter'

// What only reports need is loaded when the first report is made, not at
// require time: set-up stays quick.
/* eslint-disable @typescript-eslint/no-require-imports */
const reportModule = (): typeof import('./report') => require('./report')
const outputModule = (): typeof import('./output') => require('./output')
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
loadAddon()

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
async function collectLive (options: ResolvedOptions, writtenBy: string): Promise<LiveParts> {
  return { ...liveConfiguration(options), sections: await runSections(options.sectionTimeout), writtenBy }
}

/** The live parts without waiting: for a report written from an interrupt. */
function collectLiveSync (options: ResolvedOptions): LiveParts {
  const reason = 'the main thread was busy running JavaScript: the report was written between two of its operations, where a promise cannot be waited for'
  return { ...liveConfiguration(options), sections: runSectionsSync(reason), writtenBy: 'main thread (interrupt: it was busy running JavaScript)' }
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
// and restores the default when it stops: put ours back in front each time.
function guardSignal (): void {
  const reclaim = (event: string | symbol): void => {
    if (state?.options.signal && event === state.options.signal.name) addon().reclaimSignal()
  }
  process.on('newListener', reclaim)
  process.on('removeListener', reclaim)
}

// A worker that never loads the library is met while it starts (its
// threadId, name and code map), not at the first report, when it may be
// idle or blocked in a native call. Workers started by workers are met at
// the first report.
function meetWorkers (native: Addon): void {
  process.on('worker', () => native.meetNewThreads())
}

function ensureTriggerFile (file: string): void {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600))
  } catch (err) {
    throw new OptionError('option fileEventHandler', `cannot create ${file}: ${(err as Error).message}`)
  }
}

/**
 * Installs the report triggers: the signal (SIGUSR2 by default) and, when
 * given, the trigger file. Reports then come even while this thread is stuck.
 * Calling it again applies the new options.
 */
export function setupAutorun (version?: VersionInfo, options: Options = {}): void {
  const resolved = resolveOptions(options)
  const native = addon()
  if (!onMainThread(native)) throw new Error('guru-meditation: setupAutorun must be called on the main thread')
  if (resolved.fileEventHandler) ensureTriggerFile(resolved.fileEventHandler)
  const pkg = staticPackage(version, resolved.serviceName, resolved.secretKeys)
  native.setCodeMapEnabled(resolved.codeMap)
  // The watchdog first: the reporter attaches to it.
  native.configure({
    signal: resolved.signal?.number ?? 0,
    triggerFile: resolved.fileEventHandler ?? '',
    pollIntervalMs: Math.round(resolved.fileEventHandlerInterval * 1000),
    jsTimeoutMs: JS_TIMEOUT_MS,
    captureTimeoutMs: CAPTURE_TIMEOUT_MS,
    stallThresholdMs: resolved.stallThreshold
  })
  native.configureFatal({
    enabled: resolved.reportOnFatalSignal,
    logDir: resolved.logDir ?? '',
    serviceName: resolved.serviceName,
    nodeVersion: process.version
  })
  const first = !state
  state = { options: resolved, pkg, confSnapshot: flattenConfig(resolved.conf, resolved.secretKeys) }
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
}

function captureNow (): Promise<RawCapture> {
  return new Promise((resolve, reject) => {
    addon().capture({ jsTimeoutMs: JS_TIMEOUT_MS, captureTimeoutMs: CAPTURE_TIMEOUT_MS }, (err, capture) => {
      if (err || !capture) reject(err ?? new Error('guru-meditation: capture failed'))
      else resolve(capture)
    })
  })
}

async function reportNow (): Promise<{ report: Report, options: ResolvedOptions }> {
  const options = state?.options ?? resolveOptions({})
  const pkg = state?.pkg ?? staticPackage(undefined, options.serviceName)
  const [capture, live] = await Promise.all([captureNow(), collectLive(options, 'caller')])
  return { report: reportModule().buildReport(capture, pkg, live), options }
}

/** The report of this process now, as text or JSON. */
export async function generateReport (options: { format?: Format } = {}): Promise<string> {
  const { report, options: resolved } = await reportNow()
  return reportModule().render(report, options.format ?? resolved.format)
}

/**
 * Writes a report where a triggered one would go. Returns the file's path,
 * or null when it went to stderr.
 */
export async function writeReport (options: { format?: Format } = {}): Promise<string | null> {
  const { report, options: resolved } = await reportNow()
  const text = reportModule().render(report, options.format ?? resolved.format)
  return outputModule().writeReportText(text, resolved, new Date(report.package.generatedAt)).path
}

export const TextGuruMeditation = { setupAutorun, registerSection, generateReport, writeReport }
