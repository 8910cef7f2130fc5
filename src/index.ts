// The public API: setupAutorun, registerSection, generateReport, writeReport,
// and TextGuruMeditation for those who know oslo.reports.
import fs from 'node:fs'
import path from 'node:path'
import { isMainThread, MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import type { Configuration, Report } from './model'
import { loadAddon, type Addon, type RawCapture } from './native'
import { OptionError, resolveOptions, type Format, type Options, type ResolvedOptions } from './options'
import { writeReportText } from './output'
import { buildReport, render, type LiveParts } from './report'
import { flattenConfig, runtimeConfig } from './sections/configuration'
import { staticPackage, type StaticPackage, type VersionInfo } from './sections/package'
import { onSectionsChanged, registerSection, runSections, sectionNames, type SectionGenerator } from './sections/user'
import type { ReporterData, ReporterMessage, MainMessage } from './reporter'

export type { Options, Format, Report, VersionInfo, SectionGenerator }
export { OptionError, registerSection }

/** How long a capture waits for JS threads to give their stacks. */
const JS_TIMEOUT_MS = 200
/** How long a capture waits for all threads to answer the capture signal. */
const CAPTURE_TIMEOUT_MS = 200

interface State {
  options: ResolvedOptions
  pkg: StaticPackage
  reporter: Worker
  port: MessagePort
  /** The reporter thread's tid, once it has said hello. */
  reporterTid: number | null
}

let state: State | null = null

// Loading the addon on every thread that loads the library makes that
// thread's isolate known, so its stack can be asked for. A failure is kept
// for setup, which reports it.
let addonError: Error | null = null
try { loadAddon() } catch (err) { addonError = err as Error }

function addon (): Addon {
  if (addonError) throw addonError
  return loadAddon()
}

function configuration (options: Pick<ResolvedOptions, 'conf' | 'secretKeys'>): Configuration {
  return { application: flattenConfig(options.conf, options.secretKeys), runtime: runtimeConfig() }
}

/** Runs on the thread that called setupAutorun (or the API caller). */
async function collectLive (options: ResolvedOptions): Promise<LiveParts> {
  const errors: string[] = []
  let conf: Configuration = { application: {}, runtime: {} }
  try {
    conf = configuration(options)
  } catch (err) {
    errors.push(`configuration: ${(err as Error).message}`)
  }
  return { configuration: conf, sections: await runSections(options.sectionTimeout), errors }
}

function answerReporter (port: MessagePort): void {
  port.on('message', (message: ReporterMessage) => {
    if (!state) return
    if (message.type === 'hello') {
      state.reporterTid = message.tid
      return
    }
    const ack: MainMessage = { type: 'ack', id: message.id }
    port.postMessage(ack)
    collectLive(state.options).then(live => {
      const answer: MainMessage = { type: 'collected', id: message.id, live }
      port.postMessage(answer)
    }, () => {})
  })
  port.unref()
}

function reporterData (options: ResolvedOptions, pkg: StaticPackage): ReporterData {
  const { conf, secretKeys, ...rest } = options
  return { options: rest, pkg, confSnapshot: configuration(options), sectionNames: sectionNames() }
}

function startReporter (options: ResolvedOptions, pkg: StaticPackage): { reporter: Worker, port: MessagePort } {
  const { port1, port2 } = new MessageChannel()
  const reporter = new Worker(path.join(__dirname, 'reporter.js'), {
    name: 'guru-meditation reporter',
    workerData: { ...reporterData(options, pkg), port: port2 },
    transferList: [port2],
    // The reporter is small; it must not inherit the application's preloads.
    execArgv: [],
    stdout: false,
    stderr: false,
    resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 }
  })
  reporter.unref()
  reporter.on('error', err => {
    process.stderr.write(`guru-meditation: the reporter thread failed: ${err.message}\n`)
  })
  answerReporter(port1)
  return { reporter, port: port1 }
}

function send (message: MainMessage): void {
  state?.port.postMessage(message)
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
  if (!isMainThread) throw new Error('guru-meditation: setupAutorun must be called on the main thread')
  if (resolved.fileEventHandler) ensureTriggerFile(resolved.fileEventHandler)
  const pkg = staticPackage(version, resolved.serviceName, resolved.secretKeys)
  if (!state) {
    const { reporter, port } = startReporter(resolved, pkg)
    state = { options: resolved, pkg, reporter, port, reporterTid: null }
    onSectionsChanged(names => send({ type: 'sections', names }))
    guardSignal()
  } else {
    state.options = resolved
    state.pkg = pkg
    send({ type: 'options', data: reporterData(resolved, pkg) })
  }
  native.configure({
    signal: resolved.signal?.number ?? 0,
    triggerFile: resolved.fileEventHandler ?? '',
    pollIntervalMs: Math.round(resolved.fileEventHandlerInterval * 1000),
    jsTimeoutMs: JS_TIMEOUT_MS,
    captureTimeoutMs: CAPTURE_TIMEOUT_MS
  })
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
  const [capture, live] = await Promise.all([captureNow(), collectLive(options)])
  return { report: buildReport(capture, pkg, live, state?.reporterTid ?? null), options }
}

/** The report of this process now, as text or JSON. */
export async function generateReport (options: { format?: Format } = {}): Promise<string> {
  const { report, options: resolved } = await reportNow()
  return render(report, options.format ?? resolved.format)
}

/**
 * Writes a report where a triggered one would go. Returns the file's path,
 * or null when it went to stderr.
 */
export async function writeReport (options: { format?: Format } = {}): Promise<string | null> {
  const { report, options: resolved } = await reportNow()
  const text = render(report, options.format ?? resolved.format)
  return writeReportText(text, resolved, new Date(report.package.generatedAt)).path
}

export const TextGuruMeditation = { setupAutorun, registerSection, generateReport, writeReport }
