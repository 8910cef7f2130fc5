// The setup in force on this thread: what setupAutorun resolved, read by
// every path that writes a report here.
import { loadAddon, type Addon } from './native'
import type { ResolvedOptions } from './options'
import type { StaticPackage } from './sections/package'

export interface Setup {
  options: ResolvedOptions
  pkg: StaticPackage
  /** The configuration flattened once at setup, for reports the main thread cannot help with. */
  confSnapshot: Record<string, string>
}

let current: Setup | null = null

/** The setup, or null before setupAutorun (and on workers). */
export function currentSetup (): Setup | null {
  return current
}

export function setCurrentSetup (setup: Setup): void {
  current = setup
}

export function addon (): Addon {
  return loadAddon()
}
