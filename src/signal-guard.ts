// The report signal, kept ours while the application listens on it too.
import { addon, currentSetup } from './setup'

// libuv installs its own handler when the application listens on a signal,
// and restores the default action when the last listener goes: put ours
// back in front each time. Between libuv's restoring the default and our
// reclaiming, a signal would end the process: a listener of our own, which
// does nothing, keeps libuv from restoring it at all (unless the
// application removes all the signal's listeners, ours included: then it
// comes back at once).
const keepSignal = (): void => {}
let keptSignal: string | null = null

/** Listens on `wanted` (the report signal now; null: none), and on no other. */
export function keepListening (wanted: string | null): void {
  if (keptSignal === wanted) return
  if (keptSignal) process.off(keptSignal as NodeJS.Signals, keepSignal)
  keptSignal = wanted
  if (wanted) process.on(wanted as NodeJS.Signals, keepSignal)
}

export function guardSignal (): void {
  const ours = (event: string | symbol): boolean => event === currentSetup()?.options.signal?.name
  process.on('newListener', (event: string | symbol) => { if (ours(event)) addon().reclaimSignal() })
  process.on('removeListener', (event: string | symbol, listener: unknown) => {
    if (!ours(event)) return
    addon().reclaimSignal()
    if (listener === keepSignal) process.on(event as NodeJS.Signals, keepSignal)
  })
}
