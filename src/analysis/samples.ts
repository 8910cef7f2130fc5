// Several captures folded per thread: where each thread sat in how many of
// them, and which never moved (the same stack in every one). What an
// operator does by hand with three jstacks five seconds apart, done for
// them: `gmr <pid> --samples N --interval MS`, generateReport({ samples }).
import type { Samples, ThreadInfo } from '../model'
import { threadLabel } from './locks'
import { waitsForWork } from '../sections/threads'

/** One capture's threads, and when it was taken (Unix ms). */
export interface Sample {
  atMs: number
  threads: ThreadInfo[]
}

/** Where a thread is: its innermost JavaScript frame, else its innermost named native one. */
function place (t: ThreadInfo): string {
  const js = t.javascript?.[0]
  if (js) return `${js.function || '<anonymous>'} (${js.file || '<unknown>'}:${js.line})`
  const named = t.native.find(f => f.symbol) ?? t.native[0]
  return named ? (named.symbol || named.location) : '(no stack)'
}

// A stack compared across samples: functions and lines, not the exact
// instruction (a loop on one line moves within it; a frame's offset too).
// A thread in JavaScript by its JavaScript stack alone: the native frames
// of a loop on one line differ with each builtin it calls (Date.now).
// Null for a thread waiting for work: the same stack there is no news.
function signature (t: ThreadInfo): string | null {
  if (waitsForWork(t) || (t.native.length === 0 && !t.javascript?.length)) return null
  if (t.javascript?.length) return JSON.stringify(t.javascript.map(f => [f.function, f.file, f.line]))
  return JSON.stringify(t.native.map(f => f.symbol || f.module))
}

export function foldSamples (samples: Sample[], intervalMs: number): Samples {
  const threads = new Map<number, { last: ThreadInfo, seen: number, places: Map<string, number>, signatures: Set<string | null> }>()
  for (const sample of samples) {
    for (const t of sample.threads) {
      let entry = threads.get(t.tid)
      if (!entry) threads.set(t.tid, entry = { last: t, seen: 0, places: new Map(), signatures: new Set() })
      entry.last = t
      entry.seen++
      const where = place(t)
      entry.places.set(where, (entry.places.get(where) ?? 0) + 1)
      entry.signatures.add(signature(t))
    }
  }
  const times = samples.map(s => s.atMs)
  return {
    count: samples.length,
    intervalMs,
    coveredMs: times.length > 1 ? Math.max(...times) - Math.min(...times) : 0,
    threads: [...threads.values()].map(e => ({
      tid: e.last.tid,
      label: threadLabel(e.last),
      seen: e.seen,
      stuck: samples.length > 1 && e.seen === samples.length && e.signatures.size === 1 && !e.signatures.has(null),
      places: [...e.places].sort((a, b) => b[1] - a[1]).map(([where, count]) => ({ where, count }))
    }))
  }
}
