// Deadlocks among threads waiting for mutexes: each thread's waitingForLock
// names the holder; a chain of holders that comes back to where it started
// is a deadlock. Used by the Threads section (each thread's note) and the
// text view (one line on top).
import type { ThreadInfo } from '../model'

/** The threads a waiting thread's chain of holders visits; closed when it comes back to it. */
export function holderChain (t: ThreadInfo, byTid: Map<number, ThreadInfo>): { chain: ThreadInfo[], closed: boolean } {
  const chain = [t]
  let at = t.waitingForLock ? byTid.get(t.waitingForLock.heldBy) : undefined
  while (at && at.waitingForLock && !chain.includes(at)) {
    chain.push(at)
    at = byTid.get(at.waitingForLock.heldBy)
  }
  return { chain, closed: at === t && chain.length > 1 }
}

/** Each deadlock once, as its threads, starting from the lowest tid. */
export function deadlocks (threads: ThreadInfo[]): ThreadInfo[][] {
  const byTid = new Map(threads.map(t => [t.tid, t]))
  const seen = new Set<number>()
  const out: ThreadInfo[][] = []
  for (const t of [...threads].sort((a, b) => a.tid - b.tid)) {
    if (seen.has(t.tid) || !t.waitingForLock) continue
    const { chain, closed } = holderChain(t, byTid)
    if (!closed) continue
    for (const c of chain) seen.add(c.tid)
    out.push(chain)
  }
  return out
}

export function threadLabel (t: ThreadInfo): string {
  return `#${t.tid} (${t.kind}${t.workerName ? ` "${t.workerName}"` : ''})`
}
