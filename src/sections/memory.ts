// Memory: the process's (RSS, swap, descriptors) and each JavaScript
// thread's heap, as the native side recorded them (native/memory/, read on
// each thread at its collections and when it answers a report; the process
// figures at the capture, natively, so that they come also when every
// descriptor is taken). Whether a heap is near its limit is decided here;
// the views only render it.
import type { HeapFigures, Memory, ThreadKind, ThreadMemory } from '../model'
import type { RawCapture, RawHeap, RawThread } from '../native'

const MB = 1024 * 1024
// The young generation's spaces: the rest is the old generation.
const YOUNG_SPACES = new Set(['new_space', 'new_large_object_space'])
// A worker limited to 16 MB dies of "heap out of memory" with its old
// generation's pages at about 92% of its limit: 90% would warn too late.
export const NEAR_LIMIT_PERCENT = 85

/** --max-old-space-size from Node's options (execArgv, then NODE_OPTIONS, the last one winning as in Node), in MB; null when not given. */
export function maxOldSpaceMb (execArgv: string[], nodeOptions: string | undefined): number | null {
  const args = [...(nodeOptions ?? '').split(/\s+/).filter(Boolean), ...execArgv]
  let found: number | null = null
  args.forEach((arg, i) => {
    const m = /^--max[-_]old[-_]space[-_]size(?:=(\d+))?$/.exec(arg)
    if (!m) return
    const value = m[1] ?? args[i + 1]
    if (value !== undefined && /^\d+$/.test(value)) found = Number(value)
  })
  return found
}

function label (t: RawThread): string {
  if (t.isMain) return 'main thread'
  const name = t.workerName ? ` "${t.workerName}"` : ''
  return t.threadId === null ? `worker${name}` : `worker ${t.threadId}${name}`
}

function heapFigures (h: RawHeap, oldLimitMb: number | null, arrayBuffers: number | null): HeapFigures {
  const oldLimit = oldLimitMb !== null && oldLimitMb > 0 ? oldLimitMb * MB : null
  // V8's heap_size_limit is the old generation's limit plus room reserved
  // for the young one (48 MB to 192 MB, depending on the Node): a worker
  // limited to 16 MB has a 64 MB heap_size_limit. What V8 holds against the
  // old generation's limit is the old generation's size (the pages it
  // committed, not only what objects use): a 16 MB worker lives at 14.5 MB
  // of it and dies of "heap out of memory" a little further.
  const oldSize = h.spaces.filter(s => !YOUNG_SPACES.has(s.name)).reduce((n, s) => n + s.size, 0)
  const limit = oldLimit ?? h.limit
  const percentOfLimit = limit > 0 ? Math.round(1000 * oldSize / limit) / 10 : 0
  return {
    source: h.source,
    atMs: h.atUnixMs,
    ageMs: Math.round(h.ageMs),
    usedBytes: h.used,
    totalBytes: h.total,
    limitBytes: h.limit,
    oldGenerationLimitBytes: oldLimit,
    oldGenerationBytes: oldSize,
    percentOfLimit,
    nearLimit: percentOfLimit >= NEAR_LIMIT_PERCENT,
    externalBytes: h.external,
    arrayBuffersBytes: arrayBuffers,
    spaces: h.spaces.map(s => ({ name: s.name, usedBytes: s.used, sizeBytes: s.size })),
    gcCount: h.gcCount,
    gcTotalMs: Math.round(h.gcTotalMs * 1000) / 1000,
    lastGc: h.lastGc ? { kind: h.lastGc.kind, pauseMs: Math.round(h.lastGc.pauseMs * 1000) / 1000, atMs: h.lastGc.atUnixMs } : null
  }
}

export function mib (bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MiB`
}

/**
 * `writer`: the thread that writes the report and the ArrayBuffer bytes Node
 * counts on it (only there can it be read). `mainOldSpaceMb`: the main
 * thread's --max-old-space-size.
 */
export function buildMemory (capture: RawCapture, kinds: Map<number, ThreadKind>, mainOldSpaceMb: number | null,
  writer?: { tid: number, arrayBuffers: number | null }): Memory {
  const m = capture.memory
  // The JavaScript threads as the Threads section names them (the
  // reporter's environment is the library's, not listed).
  const threads: ThreadMemory[] = capture.threads
    .filter(t => kinds.get(t.tid) === 'main' || kinds.get(t.tid) === 'worker')
    .map(t => ({
      tid: t.tid,
      threadId: t.threadId,
      workerName: t.workerName || null,
      label: label(t),
      heap: t.heap
        ? heapFigures(t.heap, t.isMain ? mainOldSpaceMb : t.maxOldGenerationMb || null, writer?.tid === t.tid ? writer.arrayBuffers : null)
        : null
    }))
    .sort((a, b) => (a.threadId ?? Infinity) - (b.threadId ?? Infinity) || a.tid - b.tid)
  const warnings = threads.flatMap(t => {
    const h = t.heap
    if (!h || !h.nearLimit) return []
    const of = h.oldGenerationLimitBytes !== null
      ? `its old generation is ${mib(h.oldGenerationBytes)}, ${h.percentOfLimit}% of its ${mib(h.oldGenerationLimitBytes)} limit`
      : `its old generation is ${mib(h.oldGenerationBytes)}, ${h.percentOfLimit}% of V8's ${mib(h.limitBytes)} heap limit`
    return [`${t.label} (tid ${t.tid}): ${of}: near the limit, where V8 ends it with "JavaScript heap out of memory"`]
  })
  return {
    process: {
      rssBytes: m.rss,
      peakRssBytes: m.peakRss,
      swapBytes: m.swap,
      anonymousBytes: m.rssAnon,
      fileBackedBytes: m.rssFile,
      fds: m.fds,
      fdLimit: m.fdSoftLimit,
      fdHardLimit: m.fdHardLimit
    },
    threads,
    warnings
  }
}
