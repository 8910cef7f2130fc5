// The reporter: formats and writes a triggered report that the main thread
// did not pick up in time (it is busy or stuck). It runs in a Node.js
// environment that the native side creates for the report on a thread of its
// own (native/reporter/), so the report is written although every application
// thread is stuck; what only the main thread has (the live configuration,
// user sections) comes from setup or says why it is missing.
import type { Configuration } from './model'
import { loadAddon, type RawCapture } from './native'
import type { ResolvedOptions } from './options'
import { writeAllSync } from './output'
import { buildReport, writeTriggeredReport, type LiveParts } from './report'
import { configureRedaction, parseKeys, type SerializedKey } from './redact'
import type { StaticPackage } from './sections/package'
import { runtimeConfig } from './sections/configuration'
import { unavailableSections } from './sections/user'

/** What the reporter needs from setup, as JSON (kept current by the main thread). */
export interface ReporterData {
  options: Omit<ResolvedOptions, 'conf' | 'secretKeys'>
  /** The main thread's heap limit (the reporter's isolate has its own). */
  heapSizeLimit: number
  /** The application's secretKeys, RegExps as source and flags. */
  secretKeys: SerializedKey[]
  pkg: StaticPackage
  /** The configuration as of setup, for when the main thread cannot answer. */
  confSnapshot: Configuration
  sectionNames: string[]
}

function withoutMain (data: ReporterData, mainFailure: string | undefined, notPickedUp: string | undefined): LiveParts {
  const reason = mainFailure
    ? `the main thread took the report but could not write it: ${mainFailure}`
    : notPickedUp ?? 'the main thread was not offered the report (no reporter is attached on it)'
  return {
    configuration: { application: data.confSnapshot.application, runtime: runtimeConfig(process.env, data.pkg.execArgv, data.heapSizeLimit) },
    sections: unavailableSections(data.sectionNames, reason),
    errors: [`configuration: as of setup; ${reason}`],
    writtenBy: mainFailure ? 'reporter environment (the main thread could not write it)' : 'reporter environment (the main thread was blocked)'
  }
}

function report (raw: RawCapture, data: ReporterData): void {
  configureRedaction({ secretKeys: parseKeys(data.secretKeys), sectionText: data.options.maskSectionText })
  // Why the main thread handed the report back goes into its errors, not
  // into its trigger.
  const { mainFailure, mainNotPickedUp, ...trigger } = raw.trigger
  const capture = { ...raw, trigger }
  writeTriggeredReport(buildReport(capture, data.pkg, withoutMain(data, mainFailure, mainNotPickedUp)), trigger, data.options)
}

const addon = loadAddon()
const job = addon.takeReporterJob()
if (job) {
  let failure: string | null = null
  try {
    report(job.capture, JSON.parse(job.data) as ReporterData)
  } catch (err) {
    // The native fallback writes what was captured; the stack goes to stderr.
    failure = String(err).split('\n')[0] || 'unknown error'
    try { writeAllSync(2, `guru-meditation: the report failed: ${(err as Error)?.stack ?? String(err)}\n`) } catch {}
  }
  addon.finishReporterJob(failure)
  // Test hook: the environment stays up a while after its report, its loop
  // turning, so that signals sent meanwhile reach it.
  const linger = addon.testHook('reporter_linger_ms')
  if (linger > 0) setTimeout(() => addon.endReporter(), linger)
  else addon.endReporter()
}
