// The report signal, kept ours while the application listens on it too.
import { addon, currentSetup } from './setup'

// libuv installs its own handler when the application listens on a signal,
// and restores the default action when the last listener goes: put ours
// back in front each time. Between libuv's restoring the default and our
// reclaiming, a signal would end the process: while the application listens
// on the report signal, a listener of our own, which does nothing, keeps
// libuv from restoring it at all (unless the application removes all the
// signal's listeners, ours included: then it comes back at once). Only
// then: with no JavaScript listener, libuv has no handler to chain to, and
// a report's signal runs no JavaScript on the main thread (a report of an
// idle service would otherwise catch it in that listener).
const keepSignal = (): void => {}
let keptSignal: string | null = null

const applicationListens = (signal: string): boolean =>
  process.listeners(signal as NodeJS.Signals).some(l => l !== keepSignal)

function keep (signal: string): void {
  if (keptSignal === signal) return
  keptSignal = signal
  process.on(signal as NodeJS.Signals, keepSignal)
}

/** The report signal now (`wanted`; null: none): our listener on it while the application listens too, on no other. */
export function keepListening (wanted: string | null): void {
  if (keptSignal && keptSignal !== wanted) {
    process.off(keptSignal as NodeJS.Signals, keepSignal)
    keptSignal = null
  }
  if (wanted && applicationListens(wanted)) keep(wanted)
}

export function guardSignal (): void {
  const ours = (event: string | symbol): boolean => event === currentSetup()?.options.signal?.name
  process.on('newListener', (event: string | symbol, listener: unknown) => {
    if (!ours(event)) return
    addon().reclaimSignal()
    // The application's first listener: ours joins it (before it).
    if (listener !== keepSignal) keep(event as string)
  })
  process.on('removeListener', (event: string | symbol, listener: unknown) => {
    if (!ours(event)) return
    addon().reclaimSignal()
    if (listener === keepSignal) {
      keptSignal = null
      keep(event as string)
    }
  })
}
