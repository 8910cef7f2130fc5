// The live parts of a report: what only the thread that writes it can add
// (the configuration now, the user sections, its active resources), and
// the parts of a second try when the first failed.
import type { Configuration } from './model'
import type { ResolvedOptions } from './options'
import type { LiveParts } from './report'
import { reportModules, type ReportModules } from './report-modules'
import { flattenConfig, runtimeConfig } from './sections/configuration'
import { runSections, runSectionsSync, sectionNames, unavailableSections } from './sections/user'
import { addon, type Setup } from './setup'

function configuration (options: Pick<ResolvedOptions, 'conf' | 'secretKeys'>): Configuration {
  return { application: flattenConfig(options.conf, options.secretKeys), runtime: runtimeConfig(process.env, process.execArgv, addon().info().heapSizeLimit) }
}

/** The configuration now, or why not: the part of the live report both paths share. */
export function liveConfiguration (options: ResolvedOptions): { configuration: Configuration, errors: string[] } {
  try {
    return { configuration: configuration(options), errors: [] }
  } catch (err) {
    return { configuration: { application: {}, runtime: {} }, errors: [`configuration: ${(err as Error).message}`] }
  }
}

/** This thread's active resources, for its Green Threads entry. */
export function liveResources (modules: ReportModules): LiveParts['resources'] {
  return { tid: addon().info().tid, counts: modules.greenThreads.activeResources() }
}

/** Node's count of this thread's ArrayBuffer bytes, for its Memory entry; null when it cannot tell (no descriptor left to read its RSS with). */
export function liveArrayBuffers (): LiveParts['arrayBuffers'] {
  let bytes: number | null = null
  try {
    bytes = process.memoryUsage().arrayBuffers
  } catch {}
  return { tid: addon().info().tid, bytes }
}

export async function collectLive (options: ResolvedOptions, writtenBy: string): Promise<LiveParts> {
  const resources = liveResources(reportModules())
  const arrayBuffers = liveArrayBuffers()
  return { ...liveConfiguration(options), sections: await runSections(options.sectionTimeout), writtenBy, resources, arrayBuffers }
}

export const BY_INTERRUPT = 'main thread (interrupt: it was busy running JavaScript)'

/** The live parts without waiting: for a report written from an interrupt. */
export function collectLiveSync (options: ResolvedOptions, modules: ReportModules): LiveParts {
  const reason = 'the main thread was busy running JavaScript: the report was written between two of its operations, where a promise cannot be waited for'
  return { ...liveConfiguration(options), sections: runSectionsSync(reason), writtenBy: BY_INTERRUPT, resources: liveResources(modules), arrayBuffers: liveArrayBuffers() }
}

/** What a thrown value says, in one bounded line; never throws. */
export function failureText (err: unknown): string {
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
export function failedLive (current: Setup, writtenBy: string, err: unknown): LiveParts {
  const reason = `the report failed on the main thread (${failureText(err)}); written again without its live parts`
  return {
    configuration: { application: current.confSnapshot, runtime: {} },
    sections: unavailableSections(sectionNames(), reason),
    errors: [`report: ${reason}`],
    writtenBy
  }
}
