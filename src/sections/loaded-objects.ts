// Loaded Objects: every shared object mapped into the process, with its load
// bias and GNU build ID, as the native symbolizer read them at the capture
// (from the loader's own list, under its lock: nothing is read from a
// library being unmapped). What a crash reporter keeps so that a native
// frame (module + offset) can be symbolized later, on another machine,
// from the very build's debug symbols.
import type { LoadedObject, ThreadInfo } from '../model'
import type { RawCapture } from '../native'

export function loadedObjects (capture: RawCapture, threads: ThreadInfo[]): LoadedObject[] {
  const inStacks = new Set(threads.flatMap(t => t.native.map(f => f.module)))
  return (capture.loadedObjects ?? []).map(o => ({
    path: o.path,
    base: o.base,
    mapped: o.mapped,
    buildId: o.buildId,
    inStacks: inStacks.has(o.path)
  }))
}
