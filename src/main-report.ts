// A triggered report the main thread picks up (native/reporter/dispatch.h):
// from its event loop when it is free, or from an interrupt when it is busy
// running JavaScript. What it cannot write goes back to the native side,
// which hands it to a reporter environment.
import type { Addon, RawCapture } from './native'
import type { LiveParts } from './report'
import { loadedReportModules, reportModules, type ReportModules } from './report-modules'
import { BY_INTERRUPT, collectLive, collectLiveSync, failedLive, failureText } from './live'
import { addon, currentSetup, type Setup } from './setup'

function writeLive (modules: ReportModules, capture: RawCapture, current: Setup, live: LiveParts): void {
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
function writeFromInterrupt (capture: RawCapture, current: Setup): true | string {
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
export function writeTriggered (native: Addon, capture: RawCapture, fromInterrupt: boolean): true | string | undefined {
  const current = currentSetup()
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
