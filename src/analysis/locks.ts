// Deadlocks among threads waiting for mutexes: each thread's waitingForLock
// names the holder; a chain of holders that comes back to where it started
// is a deadlock. Found while the report is built: each thread's note in the
// Threads section, and the report's `deadlocks`, which the views render.
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

/** Each deadlock once, as the tids of its threads in wait order, starting from the lowest. */
export function deadlocks (threads: ThreadInfo[]): number[][] {
  const byTid = new Map(threads.map(t => [t.tid, t]))
  const seen = new Set<number>()
  const out: number[][] = []
  for (const t of [...threads].sort((a, b) => a.tid - b.tid)) {
    if (seen.has(t.tid) || !t.waitingForLock) continue
    const { chain, closed } = holderChain(t, byTid)
    if (!closed) continue
    for (const c of chain) seen.add(c.tid)
    out.push(chain.map(c => c.tid))
  }
  return out
}

/** How a thread is named in a note or a view's deadlock line: `#1695 (main)`. */
export function threadLabel (t: ThreadInfo): string {
  return `#${t.tid} (${t.kind}${t.workerName ? ` "${t.workerName}"` : ''})`
}
