// Assembles a Report from a native capture and what the JS side adds. Used
// alike by the reporter thread (triggered reports) and by the API on the
// calling thread.
import type { Configuration, JsFrame, Report, UserSection } from './model'
import { SCHEMA_VERSION } from './model'
import { deadlocks } from './analysis/locks'
import { foldSamples } from './analysis/samples'
import type { RawCapture } from './native'
import { renderJson } from './format/json'
import { renderText } from './format/text'
import { buildGreenThreads } from './sections/green-threads'
import { buildMemory, maxOldSpaceMb } from './sections/memory'
import { buildPackage, type StaticPackage } from './sections/package'
import { loadedObjects } from './sections/loaded-objects'
import { processTree } from './sections/processes'
import { buildThreads } from './sections/threads'
import type { Format } from './options'
import { writeReportText, writeRequestedText, type Destination } from './output'

/** What the thread that set the library up contributes. */
export interface LiveParts {
  configuration: Configuration
  sections: UserSection[]
  errors: string[]
  /** PackageInfo.writtenBy */
  writtenBy: string
  /** The writing thread's active resources by type (Green Threads); absent when it runs no JavaScript. */
  resources?: { tid: number, counts: Record<string, number> }
  /** Node's count of ArrayBuffer bytes on the writing thread (process.memoryUsage().arrayBuffers); absent when it runs no JavaScript or could not tell. */
  arrayBuffers?: { tid: number, bytes: number | null }
}

/** Captures taken before the one a report is built from, folded with it into its Samples. */
export interface EarlierSamples {
  captures: RawCapture[]
  intervalMs: number
}

/** A stall report's samples, taken by the watchdog over the stall's window. */
function stallSamples (capture: RawCapture): EarlierSamples | undefined {
  return capture.earlier?.length ? { captures: capture.earlier, intervalMs: capture.sampleIntervalMs ?? 0 } : undefined
}

export function buildReport (capture: RawCapture, pkg: StaticPackage, live: LiveParts,
  earlier: EarlierSamples | undefined = stallSamples(capture)): Report {
  const at = new Date(capture.startedUnixMs)
  const errors = [...live.errors]
  const report: Report = {
    schema: SCHEMA_VERSION,
    package: buildPackage(pkg, capture.trigger, live.writtenBy, at),
    threads: [],
    deadlocks: [],
    samples: null,
    capture: {
      signalPhaseUs: capture.signalPhaseUs,
      jsPhaseUs: capture.jsPhaseUs,
      totalUs: capture.totalUs,
      captureSignal: capture.captureSignal
    },
    greenThreads: { summary: '', threads: [] },
    memory: { process: { rssBytes: null, peakRssBytes: null, swapBytes: null, anonymousBytes: null, fileBackedBytes: null, fds: null, fdLimit: null, fdHardLimit: null }, threads: [], warnings: [] },
    loadedObjects: [],
    processes: [],
    configuration: live.configuration,
    sections: live.sections,
    errors
  }
  // Each generator is fenced: one that fails costs its section only.
  try {
    report.threads = buildThreads(capture)
    report.deadlocks = deadlocks(report.threads)
  } catch (err) {
    errors.push(`threads: ${(err as Error).message}`)
  }
  if (earlier) {
    try {
      const samples = [...earlier.captures.map(c => ({ atMs: c.startedUnixMs, threads: buildThreads(c) })), { atMs: capture.startedUnixMs, threads: report.threads }]
      report.samples = foldSamples(samples, earlier.intervalMs)
    } catch (err) {
      errors.push(`samples: ${(err as Error).message}`)
    }
  }
  try {
    report.greenThreads = buildGreenThreads(capture, live.resources)
  } catch (err) {
    errors.push(`green threads: ${(err as Error).message}`)
  }
  try {
    const kinds = new Map(report.threads.map(t => [t.tid, t.kind]))
    const writer = live.arrayBuffers ? { tid: live.arrayBuffers.tid, arrayBuffers: live.arrayBuffers.bytes } : undefined
    report.memory = buildMemory(capture, kinds, maxOldSpaceMb(pkg.execArgv, process.env.NODE_OPTIONS), writer)
  } catch (err) {
    errors.push(`memory: ${(err as Error).message}`)
  }
  try {
    report.loadedObjects = loadedObjects(capture, report.threads)
  } catch (err) {
    errors.push(`loaded objects: ${(err as Error).message}`)
  }
  try {
    report.processes = processTree()
  } catch (err) {
    errors.push(`processes: ${(err as Error).message}`)
  }
  return report
}

export function render (report: Report, format: Format): string {
  return format === 'json' ? renderJson(report) + '\n' : renderText(report)
}

/** Renders a triggered report and writes it where its trigger says: the file gmr asked for, or as configured. */
export function writeTriggeredReport (report: Report, trigger: RawCapture['trigger'], options: Destination & { format: Format }): void {
  const format = trigger.format === 'json' || trigger.format === 'text' ? trigger.format : options.format
  const text = render(report, format)
  const at = new Date(report.package.generatedAt)
  if (trigger.outPath) writeRequestedText(text, trigger.outPath, options, at)
  else writeReportText(text, options, at)
}
