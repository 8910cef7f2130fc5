// Where a report goes: stderr, or a file in logDir that appears complete or
// not at all (written under a temporary name, then linked to its final name,
// which also makes the name unique without a race).
import fs from 'node:fs'
import path from 'node:path'
import { loadAddon } from './native'
import { openNew } from './util/new-file'

export interface Destination {
  logDir: string | null
  serviceName: string
}

export interface Written {
  /** The report file, or null when it went to stderr. */
  path: string | null
  /** Why a report meant for logDir went to stderr instead. */
  warning: string | null
}

const MAX_SAME_SECOND = 1000
let tmpCounter = 0

/** oslo's timestamp: YYYYMMDDHHMMSS in UTC. */
export function timestamp (at: Date): string {
  return at.toISOString().replace(/[-:T]/g, '').slice(0, 14)
}

/** How long a full pipe may take no bytes before the write gives up. */
const STALL_MS = 2000

// Writes to a raw fd without the event loop: a worker's process.stderr would
// go through the main thread, which may be the one that is stuck.
//
// A non-blocking pipe or socket that is full (EAGAIN) is waited for with
// poll(2) through the addon, STALL_MS at most without progress. This may run
// inside a V8 interrupt of a main thread that is itself in Atomics.wait,
// where a second Atomics.wait nested in it corrupts V8's wait (the process
// aborts), so no Atomics.wait. Nor is the fd made blocking: its O_NONBLOCK
// belongs to the application's own stream, and a socket (what Node gives a
// child for a 'pipe') cannot be opened again through /proc.
export function writeAllSync (fd: number, text: string): void {
  const data = Buffer.from(text)
  let offset = 0
  let stalledSince = 0
  while (offset < data.length) {
    try {
      offset += fs.writeSync(fd, data, offset)
      stalledSince = 0
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      const now = Date.now()
      if (stalledSince === 0) stalledSince = now
      const left = STALL_MS - (now - stalledSince)
      if (left <= 0 || !loadAddon().waitWritable(fd, left)) throw err
    }
  }
}


/**
 * A new temporary file in dir, mode 0600, never through a link: O_EXCL
 * fails on anything already there, a planted symlink included. The name is
 * unique within the process and not guessable, and a clash takes another.
 */
function createTemp (dir: string): { tmp: string, fd: number } {
  for (let attempt = 0; ; attempt++) {
    // Without the report's name: short whatever serviceName is (NAME_MAX).
    const tmp = path.join(dir, `.gmr.${process.pid}.${++tmpCounter}.${Math.random().toString(36).slice(2, 10)}.tmp`)
    try {
      return { tmp, fd: openNew(tmp) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 9) throw err
    }
  }
}

/**
 * Writes text under a temporary name in dir, then links it to the first of
 * `names` that is free: the file appears complete or not at all. link()
 * never follows or replaces what is at a name (a file, a symlink planted
 * there): that name is taken, the next is tried.
 */
function writeNew (text: string, dir: string, names: Iterable<string>, allTaken: string): string {
  const { tmp, fd } = createTemp(dir)
  try {
    try {
      writeAllSync(fd, text)
    } finally {
      fs.closeSync(fd)
    }
    for (const name of names) {
      const final = path.join(dir, name)
      try {
        fs.linkSync(tmp, final)
        return final
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
    }
    throw new Error(allTaken)
  } finally {
    try { fs.unlinkSync(tmp) } catch {}
  }
}

/** `base`, then `base_1`, `base_2`, … for reports of the same second. */
function * reportNames (base: string): Generator<string> {
  yield base
  for (let i = 1; i < MAX_SAME_SECOND; i++) yield `${base}_${i}`
}

/**
 * A report asked for by `gmr <pid>`: to the file it named in its private
 * directory (native/watchdog/attach.h checked the name), created exclusively
 * and without following links, complete once it appears. Falls back as
 * writeReportText does, so the report is never lost.
 */
export function writeRequestedText (text: string, outPath: string, fallback: Destination, at: Date): Written {
  try {
    return { path: writeNew(text, path.dirname(outPath), [path.basename(outPath)], `${outPath} already exists`), warning: null }
  } catch (err) {
    const written = writeReportText(text, fallback, at)
    try { writeAllSync(2, `guru-meditation: cannot write the report gmr asked for to ${outPath} (${(err as Error).message})\n`) } catch {}
    return written
  }
}

/** Never throws: a report that cannot go to logDir goes to stderr. */
export function writeReportText (text: string, dest: Destination, at: Date): Written {
  if (dest.logDir) {
    try {
      const base = `${dest.serviceName}_gurumeditation_${timestamp(at)}`
      return { path: writeNew(text, dest.logDir, reportNames(base), `${MAX_SAME_SECOND} reports named ${base} already exist`), warning: null }
    } catch (err) {
      const warning = `guru-meditation: cannot write the report to ${dest.logDir} (${(err as Error).message}); writing it to stderr instead\n`
      try { writeAllSync(2, warning + text) } catch {}
      return { path: null, warning }
    }
  }
  try { writeAllSync(2, text) } catch {}
  return { path: null, warning: null }
}
