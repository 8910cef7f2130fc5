// The public API: setupAutorun, registerSection, generateReport, writeReport,
// and TextGuruMeditation for those who know oslo.reports.
import fs from 'node:fs'
import path from 'node:path'
import type { Configuration, Report } from './model'
import { loadAddon, type Addon, type RawCapture } from './native'
import { checkVersion, OptionError, resolveOptions, logDirWarning, type Format, type Options, type ResolvedOptions } from './options'
import type { LiveParts } from './report'
import { loadedReportModules, preloadReportModules, reportModules, type ReportModules } from './report-modules'
import { configureRedaction, parseKeys, serializeKeys } from './redact'
import { flattenConfig, runtimeConfig } from './sections/configuration'
import { staticPackage, type StaticPackage, type VersionInfo } from './sections/package'
import { onSectionsChanged, registerSection, runSections, runSectionsSync, sectionNames, unavailableSections, type SectionGenerator } from './sections/user'
import type { ReporterData } from './reporter'

export type { Options, Format, Report, VersionInfo, SectionGenerator }
export { OptionError, registerSection }

/** How long a capture waits for JS threads to give their stacks. */
const JS_TIMEOUT_MS = 200
/** How long a capture waits for all threads to answer the capture signal. */
const CAPTURE_TIMEOUT_MS = 200
/** How long a triggered report waits for this thread before a reporter environment writes it. */
const PICKUP_MS = 100
// What the event loop has past sectionTimeout to build and write a report
// it took; past it, its loop is taken for stuck (dispatch.h).
const WRITE_MARGIN_MS = 2000

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
  return { application: flattenConfig(options.conf, options.secretKeys), runtime: runtimeConfig(process.env, process.execArgv, addon().info().heapSizeLimit) }
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

/** This thread's active resources, for its Green Threads entry. */
function liveResources (modules: ReportModules): LiveParts['resources'] {
  return { tid: addon().info().tid, counts: modules.greenThreads.activeResources() }
}

async function collectLive (options: ResolvedOptions, writtenBy: string): Promise<LiveParts> {
  const resources = liveResources(reportModules())
  return { ...liveConfiguration(options), sections: await runSections(options.sectionTimeout), writtenBy, resources }
}

const BY_INTERRUPT = 'main thread (interrupt: it was busy running JavaScript)'

/** The live parts without waiting: for a report written from an interrupt. */
function collectLiveSync (options: ResolvedOptions, modules: ReportModules): LiveParts {
  const reason = 'the main thread was busy running JavaScript: the report was written between two of its operations, where a promise cannot be waited for'
  return { ...liveConfiguration(options), sections: runSectionsSync(reason), writtenBy: BY_INTERRUPT, resources: liveResources(modules) }
}

/** What a thrown value says, in one bounded line; never throws. */
function failureText (err: unknown): string {
  let text: string
  try {
    text = err instanceof Error ? `${String(err.name)}: ${String(err.message)}` : String(err)
  } catch {
    text = 'an unprintable exception'
  }
  return text.length > 500 ? `${text.slice(0, 500)}…` : text
}

/**
 * The parts for a second try after the first failed: what the reporter
 * environment would have (the configuration as of setup, no sections), and
 * the failure written into the report.
 */
function failedLive (current: State, writtenBy: string, err: unknown): LiveParts {
  const reason = `the report failed on the main thread (${failureText(err)}); written again without its live parts`
  return {
    configuration: { application: current.confSnapshot, runtime: {} },
    sections: unavailableSections(sectionNames(), reason),
    errors: [`report: ${reason}`],
    writtenBy
  }
}

function writeLive (modules: ReportModules, capture: RawCapture, current: State, live: LiveParts): void {
  const { buildReport, writeTriggeredReport } = modules.report
  writeTriggeredReport(buildReport(capture, current.pkg, live), capture.trigger, current.options)
}

const reportFailed = (err: unknown): void => {
  process.stderr.write(`guru-meditation: the report failed: ${(err as Error)?.stack ?? String(err)}\n`)
}

/** Why the main thread hands a report back, having failed it twice. */
function failedTwice (first: unknown, again: unknown): string {
  return `its report failed twice (${failureText(first)}; then ${failureText(again)})`
}

// Between two operations of the busy main thread: synchronous, and nothing
// may throw into the interrupted code. True when written; else why not,
// and the native side hands the report to a reporter environment. A failure
// with the live parts is written into a second try without them; one that
// fails too (no stack left, say) is the environment's, on its own thread.
function writeFromInterrupt (capture: RawCapture, current: State): true | string {
  const modules = loadedReportModules()
  if (!modules) return "the library's report modules were not loaded yet (they load at the first event loop turn after setup; the interrupt came before that, or during the load)"
  try {
    if (addon().testHook('interrupt_report_throws')) throw new Error('injected by the test hook interrupt_report_throws')
    writeLive(modules, capture, current, collectLiveSync(current.options, modules))
    return true
  } catch (err) {
    try {
      writeLive(modules, capture, current, failedLive(current, BY_INTERRUPT, err))
      return true
    } catch (again) {
      return failedTwice(err, again)
    }
  }
}

// A triggered report is written here when this thread picks it up within
// PICKUP_MS: from its event loop when it is free (live configuration and
// user sections), or, when it is busy running JavaScript, from an interrupt
// (writeFromInterrupt).
function writeTriggered (native: Addon, capture: RawCapture, fromInterrupt: boolean): true | string | undefined {
  const current = state
  if (fromInterrupt) return current ? writeFromInterrupt(capture, current) : true
  const job = capture.job ?? 0
  if (!current) {
    native.mainReportEnded(job)
    return
  }
  // As from an interrupt: a failure is written into a second try; one that
  // fails too is handed back (the reporter environment has a realm of its
  // own, where what broke this one may work). Written only while still its
  // own: had the loop got stuck while the sections were awaited, the
  // watchdog took the report back and a reporter environment wrote it.
  const writtenBy = 'main thread (event loop)'
  const write = (live: LiveParts): void => {
    if (native.commitMainReport(job)) writeLive(reportModules(), capture, current, live)
  }
  let first: unknown
  collectLive(current.options, writtenBy)
    .then(write)
    .catch(err => {
      first = err
      write(failedLive(current, writtenBy, err))
    })
    .then(() => native.mainReportEnded(job), (again: unknown) => native.mainReportEnded(job, failedTwice(first, again)))
    .catch(reportFailed)
}

function reporterData ({ options, pkg, confSnapshot }: State): string {
  const { conf, secretKeys, ...rest } = options
  // The runtime part is left to the reporter (it is the same process):
  // computing it here would cost every start-up.
  const data: ReporterData = {
    options: rest,
    heapSizeLimit: addon().info().heapSizeLimit,
    secretKeys: serializeKeys(secretKeys),
    pkg,
    confSnapshot: { application: confSnapshot, runtime: {} },
    sectionNames: sectionNames()
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

// A worker that never loads the library is met once it is online (its
// threadId, name and code map), not at the first report, when it may be
// idle or blocked in a native call: one signal to each thread not met
// before. Workers started by workers are met at the first report.
function meetWorkers (native: Addon): void {
  process.on('worker', worker => worker.once('online', () => native.meetNewThreads()))
}

/** Creates the trigger file if missing; true when this call created it. `name` says where it was given. */
function ensureTriggerFile (file: string, name: string): boolean {
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600))
    return true
  } catch (err) {
    // Already there: resolveOptions checked it is a regular file.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new OptionError(name, `cannot create ${file}: ${(err as Error).message}`)
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
  const pkg = staticPackage(version, resolved.serviceName)
  const confSnapshot = flattenConfig(resolved.conf, resolved.secretKeys)
  const triggerName = options?.fileEventHandler !== undefined ? 'option fileEventHandler' : 'environment variable GMR_FILE_TRIGGER'
  const created = resolved.fileEventHandler ? ensureTriggerFile(resolved.fileEventHandler, triggerName) : false
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
  // Every section masks by these rules from now on.
  configureRedaction({ secretKeys: resolved.secretKeys, sectionText: resolved.maskSectionText })
  state = { options: resolved, pkg, confSnapshot }
  // The sections' time, and the building and writing after them.
  native.setMainReportTimeout(resolved.sectionTimeout + WRITE_MARGIN_MS)
  if (first) {
    native.prepareReporter(path.join(__dirname, 'reporter.js'), reporterData(state))
    native.attachMainReporter((capture, fromInterrupt) => writeTriggered(native, capture, fromInterrupt), PICKUP_MS)
    // A new section only changes the names: the snapshot is not flattened again.
    onSectionsChanged(() => { if (state) native.setReporterData(reporterData(state)) })
    guardSignal()
    meetWorkers(native)
    preloadReportModules()
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

/**
 * On a thread that did not set the library up (a worker) when the main
 * thread did: that setup, from what it gave the reporter. Its secretKeys
 * mask this thread's report too, and it goes where reports go.
 */
function setupOfMain (): { options: ResolvedOptions, pkg: StaticPackage, conf: Configuration['application'] } | null {
  let data: ReporterData
  try {
    const json = addon().reporterData()
    if (!json) return null
    data = JSON.parse(json) as ReporterData
  } catch { return null }
  const secretKeys = parseKeys(data.secretKeys)
  configureRedaction({ secretKeys, sectionText: data.options.maskSectionText })
  return { options: { ...data.options, conf: undefined, secretKeys }, pkg: data.pkg, conf: data.confSnapshot.application }
}

async function reportNow (): Promise<{ report: Report, options: ResolvedOptions }> {
  const main = state ? null : setupOfMain()
  const options = state?.options ?? main?.options ?? resolveOptions({})
  const pkg = state?.pkg ?? main?.pkg ?? staticPackage(undefined, options.serviceName)
  const [capture, live] = await Promise.all([captureNow(options), collectLive(options, 'caller')])
  // The configuration object is the main thread's: as of its setup.
  if (main) live.configuration = { ...live.configuration, application: main.conf }
  return { report: reportModules().report.buildReport(capture, pkg, live), options }
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
  return reportModules().report.render(report, format ?? resolved.format)
}

/**
 * Writes a report where a triggered one would go. Returns the file's path,
 * or null when it went to stderr.
 */
export async function writeReport (options?: { format?: Format }): Promise<string | null> {
  const format = requestedFormat(options)
  const { report, options: resolved } = await reportNow()
  const { report: { render }, output } = reportModules()
  const text = render(report, format ?? resolved.format)
  return output.writeReportText(text, resolved, new Date(report.package.generatedAt)).path
}

export const TextGuruMeditation = { setupAutorun, registerSection, generateReport, writeReport }

if (earlier) module.exports = earlier
else Object.defineProperty(globalThis, SHARED, { value: module.exports })
