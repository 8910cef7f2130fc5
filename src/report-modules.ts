// The modules only reports need, loaded together and once: not at require
// time (set-up stays quick), and never inside a report written from an
// interrupt of the busy main thread. That interrupt may land while one of
// them is half initialized (its first load on this thread, by the event
// loop's report or the API), or in the middle of the application's own
// require, whose hooks (an APM agent's) must not see the library load there.
/* eslint-disable @typescript-eslint/no-require-imports */

export interface ReportModules {
  report: typeof import('./report')
  output: typeof import('./output')
  greenThreads: typeof import('./sections/green-threads')
}

let modules: ReportModules | null = null

/** The modules, loaded now if they are not yet (never from an interrupt: see loadedReportModules). */
export function reportModules (): ReportModules {
  if (modules) return modules
  const loading: ReportModules = {
    report: require('./report'),
    output: require('./output'),
    greenThreads: require('./sections/green-threads')
  }
  // Built-in modules that reports use and Node loads only on demand: one
  // the application is loading when the interrupt lands would be found
  // half initialized too.
  require('node:v8')
  modules = loading // only once all of them are complete
  return modules
}

/** For a report written from an interrupt: the modules, or null while they are not all loaded. */
export function loadedReportModules (): ReportModules | null {
  return modules
}

/**
 * Loads them once this thread's event loop turns after set-up, so that a
 * report of a thread busy in JavaScript finds them there. Until then such a
 * report is written by a reporter environment.
 */
export function preloadReportModules (): void {
  if (modules) return
  setImmediate(() => {
    // Never into the application: a module that fails to load fails the
    // report that needs it, which says so.
    try { reportModules() } catch {}
  }).unref()
}
