// The reporter: formats and writes one triggered report. It runs in a Node.js
// environment that the native side creates for the report on a thread of its
// own (native/reporter/), so a report is written even while every application
// thread is stuck. It asks the main thread for what only that thread has (the
// live configuration and user sections) and does not wait past a deadline.
import type { Configuration } from './model'
import { loadAddon, type RawCapture } from './native'
import type { ResolvedOptions } from './options'
import { writeReportText } from './output'
import { buildReport, render, type LiveParts } from './report'
import type { StaticPackage } from './sections/package'
import { runtimeConfig } from './sections/configuration'
import { unavailableSections } from './sections/user'

/** What the reporter needs from setup, as JSON (kept current by the main thread). */
export interface ReporterData {
  options: Omit<ResolvedOptions, 'conf' | 'secretKeys'>
  pkg: StaticPackage
  /** The configuration as of setup, for when the main thread cannot answer. */
  confSnapshot: Configuration
  sectionNames: string[]
}

/** How long the main thread has to pick a request up: a stuck one never does. */
const PICKUP_TIMEOUT_MS = 250
/** Extra time for the main thread's answer beyond the sections' own deadline. */
const ANSWER_MARGIN_MS = 250

const addon = loadAddon()

function askMain (data: ReporterData): LiveParts {
  const answer = addon.askMain(PICKUP_TIMEOUT_MS, data.options.sectionTimeout + ANSWER_MARGIN_MS)
  if (answer.json !== undefined) return JSON.parse(answer.json) as LiveParts
  const reason = answer.error === 'not-picked-up'
    ? `the main thread did not pick up the request within ${PICKUP_TIMEOUT_MS} ms (its event loop is busy or blocked)`
    : answer.error === 'timed-out'
      ? `the main thread did not finish within ${data.options.sectionTimeout + ANSWER_MARGIN_MS} ms`
      : 'the main thread cannot be asked (it is shutting down)'
  return {
    configuration: { application: data.confSnapshot.application, runtime: runtimeConfig(process.env, data.pkg.execArgv) },
    sections: unavailableSections(data.sectionNames, reason),
    errors: [`configuration: as of setup; ${reason}`]
  }
}

function report (capture: RawCapture, data: ReporterData): void {
  const built = buildReport(capture, data.pkg, askMain(data))
  writeReportText(render(built, data.options.format), data.options, new Date(capture.startedUnixMs))
}

const job = addon.takeReporterJob()
if (job) {
  try {
    report(job.capture, JSON.parse(job.data) as ReporterData)
  } catch (err) {
    writeReportText(`guru-meditation: the report failed: ${(err as Error).stack ?? String(err)}\n`, { logDir: null, serviceName: '' }, new Date())
  } finally {
    addon.reportDone()
    addon.endReporter()
  }
}
