// The public API: setupAutorun, registerSection, generateReport, writeReport,
// and TextGuruMeditation for those who know oslo.reports.
import fs from 'node:fs'
import path from 'node:path'
import { collectLive } from './live'
import { writeTriggered } from './main-report'
import type { Configuration, Report } from './model'
import { loadAddon, type Addon, type RawCapture } from './native'
import { checkVersion, OptionError, resolveOptions, logDirWarning, type Format, type Options, type ResolvedOptions } from './options'
import { preloadReportModules, reportModules } from './report-modules'
import { configureRedaction, parseKeys, serializeKeys } from './redact'
import type { ReporterData } from './reporter-env'
import { flattenConfig } from './sections/configuration'
import { staticPackage, type StaticPackage, type VersionInfo } from './sections/package'
import { onSectionsChanged, registerSection, sectionNames, type SectionGenerator } from './sections/user'
import { addon, currentSetup, setCurrentSetup, type Setup } from './setup'
import { guardSignal, keepListening } from './signal-guard'
import { ensureTriggerFile } from './trigger-file'
import { isMainThread } from './util/main-thread'

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

// Two copies of the library on one thread (two versions in one dependency
// tree) are one: a later copy hands its exports over to the first, so there
// is one watchdog, one signal handler, one set of sections (see the end).
const SHARED = Symbol.for('guru-meditation')
const earlier = (globalThis as Record<symbol, unknown>)[SHARED]

// Loading the addon on every thread that loads the library makes that
// thread's isolate known, so its stack can be asked for. Without a binary
// for this Node, require fails here with loadAddon's one message.
if (!earlier) loadAddon()

function reporterData ({ options, pkg, confSnapshot }: Setup): string {
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

// A worker that never loads the library is met once it is online (its
// threadId, name and code map), not at the first report, when it may be
// idle or blocked in a native call: one signal to each thread not met
// before. Workers started by workers are met at the first report.
function meetWorkers (native: Addon): void {
  process.on('worker', worker => worker.once('online', () => native.meetNewThreads()))
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
  if (!isMainThread()) throw new Error('guru-meditation: setupAutorun must be called on the main thread')
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
  const previous = currentSetup()
  const unsafeDir = resolved.logDir && resolved.logDir !== previous?.options.logDir ? logDirWarning(resolved.logDir) : null
  if (unsafeDir) try { fs.writeSync(2, unsafeDir) } catch {}
  // Every section masks by these rules from now on.
  configureRedaction({ secretKeys: resolved.secretKeys, sectionText: resolved.maskSectionText })
  const setup: Setup = { options: resolved, pkg, confSnapshot }
  setCurrentSetup(setup)
  // The sections' time, and the building and writing after them.
  native.setMainReportTimeout(resolved.sectionTimeout + WRITE_MARGIN_MS)
  if (!previous) {
    native.prepareReporter(path.join(__dirname, 'reporter-env.js'), reporterData(setup))
    native.attachMainReporter((capture, fromInterrupt) => writeTriggered(native, capture, fromInterrupt), PICKUP_MS)
    // A new section only changes the names: the snapshot is not flattened again.
    onSectionsChanged(() => { const current = currentSetup(); if (current) native.setReporterData(reporterData(current)) })
    guardSignal()
    meetWorkers(native)
    preloadReportModules()
  } else {
    native.setReporterData(reporterData(setup))
  }
  keepListening(resolved.signal?.name ?? null)
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

/** Samples to take and their interval, as generateReport and writeReport take them. */
interface Sampling { samples: number, intervalMs: number }

async function reportNow (sampling: Sampling | null = null): Promise<{ report: Report, options: ResolvedOptions }> {
  const setup = currentSetup()
  const main = setup ? null : setupOfMain()
  const options = setup?.options ?? main?.options ?? resolveOptions({})
  const pkg = setup?.pkg ?? main?.pkg ?? staticPackage(undefined, options.serviceName)
  const [captures, live] = await Promise.all([captureSeveral(options, sampling), collectLive(options, 'caller')])
  // The configuration object is the main thread's: as of its setup.
  if (main) live.configuration = { ...live.configuration, application: main.conf }
  const last = captures[captures.length - 1]
  const earlier = sampling ? { captures: captures.slice(0, -1), intervalMs: sampling.intervalMs } : undefined
  return { report: reportModules().report.buildReport(last, pkg, live, earlier), options }
}

/** One capture, or `samples` of them `intervalMs` apart. */
async function captureSeveral (options: ResolvedOptions, sampling: Sampling | null): Promise<RawCapture[]> {
  const captures = [await captureNow(options)]
  for (let i = 1; i < (sampling?.samples ?? 1); i++) {
    await new Promise(resolve => setTimeout(resolve, sampling?.intervalMs))
    captures.push(await captureNow(options))
  }
  return captures
}

/** generateReport's and writeReport's `samples` and `intervalMs`, checked before any capture; null: one capture. */
function requestedSampling (options: { samples?: number, intervalMs?: number } | undefined): Sampling | null {
  if (options === undefined || (options.samples === undefined && options.intervalMs === undefined)) return null
  const { samples = 1, intervalMs = 1000 } = options
  if (!Number.isInteger(samples) || samples < 1 || samples > 100) throw new OptionError('option samples', `must be an integer from 1 to 100, got ${JSON.stringify(samples)}`)
  if (!Number.isInteger(intervalMs) || intervalMs < 10 || intervalMs > 60000) throw new OptionError('option intervalMs', `must be an integer from 10 to 60000, got ${JSON.stringify(intervalMs)}`)
  return samples > 1 ? { samples, intervalMs } : null
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

/** What generateReport and writeReport take. */
export interface ReportRequest {
  format?: Format
  /** Captures to take and fold per thread into the report's Samples (1 to 100; default 1). */
  samples?: number
  /** The pause between two captures, in ms (10 to 60000; default 1000). */
  intervalMs?: number
}

/** The report of this process now, as text or JSON. */
export async function generateReport (options?: ReportRequest): Promise<string> {
  const format = requestedFormat(options)
  const { report, options: resolved } = await reportNow(requestedSampling(options))
  return reportModules().report.render(report, format ?? resolved.format)
}

/**
 * Writes a report where a triggered one would go. Returns the file's path,
 * or null when it went to stderr.
 */
export async function writeReport (options?: ReportRequest): Promise<string | null> {
  const format = requestedFormat(options)
  const { report, options: resolved } = await reportNow(requestedSampling(options))
  const { report: { render }, output } = reportModules()
  const text = render(report, format ?? resolved.format)
  return output.writeReportText(text, resolved, new Date(report.package.generatedAt)).path
}

export const TextGuruMeditation = { setupAutorun, registerSection, generateReport, writeReport }

if (earlier) module.exports = earlier
else Object.defineProperty(globalThis, SHARED, { value: module.exports })
