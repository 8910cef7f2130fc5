// Green Threads: Node's green threads are its pending async work. Per
// JavaScript thread, the handles of its event loop as the native side read
// them (native/green/loop_walk.cc), also while the thread is stuck: what it
// waits for, what keeps the process alive, and what is overdue.
import fs from 'node:fs'
import os from 'node:os'
import type { GreenHandle, GreenPromises, GreenThread, GreenThreads } from '../model'
import type { RawCapture, RawHandle, RawLoop, RawThread } from '../native'
import { duration as seconds } from '../util/duration'
import { maskArgs, maskText } from '../redact'

// What the handle types are to a reader of Node code.
const TYPE_NAMES: Record<string, string> = {
  tcp: 'tcp socket',
  udp: 'udp socket',
  pipe: 'pipe',
  tty: 'tty',
  timer: 'timer',
  process: 'child process',
  fs_event: 'fs watcher',
  fs_poll: 'fs poller',
  signal: 'signal handler',
  async: 'async wakeup',
  check: 'check',
  idle: 'idle',
  prepare: 'prepare',
  poll: 'fd poller'
}

const MAX_COMMAND = 200

function signalName (n: number): string {
  const signals = os.constants.signals as Record<string, number>
  return Object.keys(signals).find(k => signals[k] === n) ?? String(n)
}

/** A child's command line, masked as argv is; '' once it is gone. */
function command (pid: number): string {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    const text = maskArgs(args).join(' ')
    return text.length > MAX_COMMAND ? text.slice(0, MAX_COMMAND) + '…' : text
  } catch {
    return ''
  }
}

function when (dueInMs: number): string {
  return dueInMs >= 0 ? `due in ${seconds(dueInMs)}` : `overdue by ${seconds(dueInMs)}`
}

function describe (h: RawHandle): string {
  const name = TYPE_NAMES[h.type] ?? h.type
  if (h.environmentOffset >= 0) {
    // Node runs every JavaScript timer from one libuv timer, due when the
    // first of them is.
    if (h.type === 'timer') {
      // libuv stops it while it runs it: a loop inside a timer callback shows it stopped.
      return h.dueInMs === null ? 'JavaScript timers: not armed (none pending, or being run now)' : `JavaScript timers: the next ${when(h.dueInMs)}`
    }
    return `${name} (Node's own)`
  }
  switch (h.type) {
    case 'tcp':
    case 'pipe':
    case 'udp': {
      if (h.listening) return `${h.type === 'pipe' ? 'pipe' : 'tcp'} server listening on ${h.local || `fd ${h.fd}`}`
      const ends = h.remote ? `${h.local || '?'} -> ${h.remote}` : h.local || (h.fd >= 0 ? `fd ${h.fd}` : 'not open')
      const queued = h.writeQueueBytes > 0 ? `, ${h.writeQueueBytes} bytes waiting to be written` : ''
      return `${name} ${ends}${queued}`
    }
    case 'tty':
      return `tty fd ${h.fd}`
    case 'timer': {
      if (h.dueInMs === null) return 'timer (stopped)'
      return `timer ${when(h.dueInMs)}${h.repeatMs > 0 ? `, every ${seconds(h.repeatMs)}` : ''}`
    }
    case 'process': {
      const cmd = h.pid > 0 ? command(h.pid) : ''
      return `child process ${h.pid > 0 ? `pid ${h.pid}` : '(exited)'}${cmd ? `: ${cmd}` : ''}`
    }
    case 'fs_event':
      return `fs watcher on ${h.path ? maskText(h.path) : '(unknown path)'}`
    case 'signal':
      return `signal handler for ${signalName(h.signum)}`
    case 'poll':
      return `fd poller on fd ${h.fd}`
    default:
      return name
  }
}

function handle (h: RawHandle): GreenHandle {
  return {
    type: h.type,
    description: describe(h),
    active: h.active,
    referenced: h.ref,
    closing: h.closing,
    node: h.environmentOffset >= 0,
    machinery: (h.environmentOffset >= 0 && h.type !== 'timer') || (h.type === 'async' && !h.ref),
    fd: h.fd >= 0 ? h.fd : null,
    ...(h.local ? { local: h.local } : {}),
    ...(h.remote ? { remote: h.remote } : {}),
    ...(h.type === 'timer' ? { dueInMs: h.dueInMs, repeatMs: h.repeatMs } : {}),
    ...(h.type === 'process' ? { pid: h.pid } : {}),
    ...(h.type === 'signal' ? { signal: signalName(h.signum) } : {}),
    ...(h.type === 'fs_event' ? { path: maskText(h.path) } : {})
  }
}

function label (loop: RawLoop, thread: RawThread | undefined): string {
  if (loop.tid === process.pid) return 'main thread'
  const id = loop.threadId ?? thread?.threadId
  const name = thread?.workerName ? ` "${thread.workerName}"` : ''
  return id === null || id === undefined ? `worker${name}` : `worker ${id}${name}`
}

/** What the loop is doing: waiting for events, or how long it has not turned. */
function loopState (loop: RawLoop): string {
  if (loop.waiting) return 'waiting for events'
  // The loop reads its clock at each turn: a clock this old means it has
  // been in one callback (or one native call) that long.
  return loop.clockAgeMs >= 1000 ? `has not turned for ${seconds(loop.clockAgeMs)}` : 'running'
}

/** This thread's active resources by type, from Node; {} when it cannot tell. */
export function activeResources (): Record<string, number> {
  const counts: Record<string, number> = {}
  try {
    for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1
  } catch {}
  return counts
}

function greenThread (loop: RawLoop, thread: RawThread | undefined, resources: Record<string, number> | null): GreenThread {
  const handles = loop.handles.map(handle)
  return {
    tid: loop.tid,
    threadId: loop.threadId ?? thread?.threadId ?? null,
    workerName: thread?.workerName || null,
    label: label(loop, thread),
    loop: loopState(loop),
    activeHandles: loop.activeHandles,
    activeRequests: loop.activeRequests,
    handles,
    more: loop.more,
    problem: loop.problem || null,
    resources,
    promises: loop.promises ? { ...loop.promises, groups: loop.promises.groups.map(g => ({ ...g })) } : null,
    timers: loop.timers ? { ...loop.timers, timers: loop.timers.timers.map(tm => ({ ...tm })) } : null
  }
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** One line: counts by type, what keeps the process alive, the most overdue wait. */
function summary (threads: GreenThread[]): string {
  if (threads.length === 0) return 'no event loop was read'
  const byType = new Map<string, number>()
  let alive = 0
  let requests = 0
  let overdue: { ms: number, where: string } | null = null
  for (const t of threads) {
    requests += t.activeRequests
    for (const h of t.handles) {
      if (h.active && h.referenced) alive++
      if (h.machinery) continue
      byType.set(h.type, (byType.get(h.type) ?? 0) + 1)
      if (h.type === 'timer' && typeof h.dueInMs === 'number' && h.dueInMs < 0 && (!overdue || h.dueInMs < overdue.ms)) {
        overdue = { ms: h.dueInMs, where: t.label }
      }
    }
  }
  const counts = [...byType].sort((a, b) => b[1] - a[1]).map(([type, n]) => `${n} ${type}`).join(', ')
  const parts = [
    `${plural(threads.length, 'event loop')}: ${counts || 'no handles'}`,
    `${alive} keep${alive === 1 ? 's' : ''} the process alive`,
    plural(requests, 'request') + ' in flight'
  ]
  const promises = threads.map(t => t.promises).filter((p): p is GreenPromises => p !== null)
  if (promises.length > 0) {
    const pending = promises.reduce((n, p) => n + p.pending + p.untracked, 0)
    const oldest = Math.max(0, ...promises.flatMap(p => p.groups.map(g => g.oldestMs)))
    parts.push(`${plural(pending, 'pending promise')}${pending > 0 ? `, the oldest ${seconds(oldest)}` : ''}`)
  }
  if (overdue) parts.push(`a timer overdue by ${seconds(overdue.ms)} on the ${overdue.where}`)
  return parts.join('; ')
}

export function buildGreenThreads (capture: RawCapture, resources?: { tid: number, counts: Record<string, number> }): GreenThreads {
  const byTid = new Map(capture.threads.map(t => [t.tid, t]))
  const threads = (capture.loops ?? [])
    .map(loop => greenThread(loop, byTid.get(loop.tid), resources?.tid === loop.tid ? resources.counts : null))
    .sort((a, b) => (a.threadId ?? Infinity) - (b.threadId ?? Infinity) || a.tid - b.tid)
  return { summary: summary(threads), threads }
}
