// Threads: turns the native capture of every thread into the model, naming
// each thread's kind and saying in one line what it is doing.
import path from 'node:path'
import type { JavaScriptSource, JsFrame, NativeFrame, ThreadInfo, ThreadKind } from '../model'
import { packageRoot, type RawCapture, type RawJsFrame, type RawNativeFrame, type RawThread } from '../native'
import { holderChain, threadLabel } from '../analysis/locks'

const OS_STATES: Record<string, string> = {
  R: 'running',
  S: 'sleeping',
  D: 'disk wait',
  T: 'stopped',
  t: 'tracing stop',
  Z: 'zombie',
  X: 'dead',
  I: 'idle'
}

// Native symbols that say what a thread without an isolate is for.
const KIND_MARKERS: Array<[RegExp, ThreadKind]> = [
  [/^worker$|uv__work_done|uv_queue_work|threadpool/, 'libuv-threadpool'],
  [/WorkerThreadsTaskRunner|PlatformWorkerThread|DelayedTaskScheduler/, 'v8-platform'],
  [/inspector::|InspectorIo|StartIoThread/, 'inspector'],
  [/SignalInspectorThread|signal_handler|SignalWatchdog/, 'signal'],
  [/node::worker::Worker::Run/, 'worker']
]

// Frames of this library itself, dropped from an API caller's stack. From
// the package's root: dist/ is bundled, so __dirname here is not this file's.
const OWN_DIR = path.join(packageRoot, 'dist') + path.sep

export function buildThreads (capture: RawCapture): ThreadInfo[] {
  const threads = capture.threads
    .map(buildThread)
    .sort((a, b) => kindOrder(a) - kindOrder(b) || a.tid - b.tid)
  nameLockWaits(threads)
  return threads
}

// Who holds the mutex each waiting thread waits for, and whether following
// the holders leads back to the waiter: a deadlock, said on each thread in it.
function nameLockWaits (threads: ThreadInfo[]): void {
  const byTid = new Map(threads.map(t => [t.tid, t]))
  for (const t of threads) {
    if (!t.waitingForLock) continue
    const holder = byTid.get(t.waitingForLock.heldBy)
    if (!holder) continue
    const { chain, closed } = holderChain(t, byTid)
    const deadlock = closed ? `: a deadlock, ${[...chain, t].map(threadLabel).join(' waits for ')}` : ''
    const prefix = t.note ? `${t.note}; ` : ''
    t.note = `${prefix}waiting for the mutex at ${t.waitingForLock.address}, held by ${threadLabel(holder)}${deadlock}`
  }
}

function kindOrder (t: ThreadInfo): number {
  const order: ThreadKind[] = ['main', 'worker', 'libuv-threadpool', 'v8-platform', 'inspector', 'signal', 'other', 'guru-meditation']
  return order.indexOf(t.kind)
}

function buildThread (t: RawThread): ThreadInfo {
  const native = t.native.map(nativeFrame)
  const kind = threadKind(t)
  // The reporter's own environment runs JavaScript too, but it is ours (the
  // report being written), never the application's: not shown.
  const isJsThread = kind === 'main' || kind === 'worker' || (t.hasIsolate && kind !== 'guru-meditation')
  const { javascript, javascriptSource } = isJsThread ? javascriptOf(t) : { javascript: null, javascriptSource: null }
  return {
    tid: t.tid,
    name: t.name,
    kind,
    threadId: t.threadId,
    workerName: t.workerName || null,
    state: OS_STATES[t.osState] ?? t.osState,
    cpu: { userMs: Math.round(t.cpuUserUs / 1000), systemMs: Math.round(t.cpuSystemUs / 1000) },
    vmState: t.vmState,
    javascript,
    javascriptSource,
    asyncCallers: javascriptSource === 'interrupt' && t.asyncCallers ? t.asyncCallers.filter(notOwn).map(jsFrame) : null,
    native,
    interruptedUs: t.captured ? Math.round(t.interruptedUs * 10) / 10 : null,
    waitingForLock: t.lockWait ? { address: t.lockWait.address, heldBy: t.lockWait.ownerTid } : null,
    note: diagnose(t, kind, javascript, javascriptSource, native)
  }
}

const notOwn = (f: RawJsFrame): boolean => !f.file.startsWith(OWN_DIR)

// The interrupt's answer when there is one (exact positions); else V8's
// stack sample named by the code map (function start lines).
function javascriptOf (t: RawThread): { javascript: JsFrame[], javascriptSource: JavaScriptSource } {
  if (t.jsRequested && t.jsAnswered) return { javascript: t.javascript.filter(notOwn).map(jsFrame), javascriptSource: 'interrupt' }
  const sampled = t.sampledJavascript.filter(notOwn).map(jsFrame)
  if (sampled.length > 0) return { javascript: sampled, javascriptSource: 'code-map' }
  return { javascript: t.javascript.filter(notOwn).map(jsFrame), javascriptSource: null }
}

// Our threads named natively: the reporter's (native/reporter/reporter_env.cc)
// and the fatal-signal helper (native/fatal/fatal_report.cc).
const OWN_THREADS = new Set(['gmr-reporter', 'gmr-fatal'])

function threadKind (t: RawThread): ThreadKind {
  if (t.isWatchdog || OWN_THREADS.has(t.name)) return 'guru-meditation'
  if (t.isMain) return 'main'
  if (t.hasIsolate) return 'worker'
  for (const f of t.native) {
    for (const [re, kind] of KIND_MARKERS) if (re.test(f.symbol)) return kind
  }
  return 'other'
}

function jsFrame (f: JsFrame): JsFrame {
  return { function: f.function, file: f.file, line: f.line, column: f.column }
}

function nativeFrame (f: RawNativeFrame): NativeFrame {
  const module = f.module ? path.basename(f.module) : ''
  let location: string
  if (f.symbol) location = `${f.symbol}+0x${f.symbolOffset.toString(16)}`
  else if (module) location = `${module}+0x${f.moduleOffset.toString(16)}`
  else location = '??'
  const javascript = f.javascript ? jsFrame(f.javascript) : null
  return { address: f.address, symbol: f.symbol, module: f.module, location, javascript }
}

function where (f: JsFrame): string {
  return `${f.function || '<anonymous>'} (${f.file ? path.basename(f.file) : '<unknown>'}:${f.line})`
}

// Where a native call was made from: the innermost frame of the
// application's own code, not of Node's modules or of packages (a blocked
// execSync is in node:child_process, maybe under a package's wrapper).
const NOT_APP = /^node:|[\\/]node_modules[\\/]/
function callerInApp (js: JsFrame[]): string {
  return where(js.find(f => f.file !== '' && !NOT_APP.test(f.file)) ??
    js.find(f => f.file !== '' && !f.file.startsWith('node:')) ?? js[0])
}

// What a busy threadpool thread works on, from the function libuv runs.
const THREADPOOL_TASKS: Array<[RegExp, string]> = [
  [/^uv__fs_work$/, 'an fs request'],
  [/^uv__(getaddrinfo|getnameinfo)_work$/, 'a DNS lookup'],
  [/crypto/i, 'a crypto job'],
  [/zlib|Compression/i, 'a zlib job']
]

function threadpoolWork (t: RawThread, symbols: string[]): string {
  const task = THREADPOOL_TASKS.find(([re]) => symbols.some(s => re.test(s)))?.[1] ?? 'a task'
  const top = symbols.find(s => s !== '')
  const inKernel = t.osState === 'S' || t.osState === 'D' ? ', waiting in the kernel' : ''
  return `working on ${task}${top ? `, in ${top}` : ''}${inKernel}`
}

/**
 * Whether a thread waits for something to do (its notes below): its stack
 * stays the same while nothing is wrong, so it is never "stuck" (analysis/samples.ts).
 */
export function waitsForWork (t: ThreadInfo): boolean {
  return t.kind === 'guru-meditation' || (t.waitingForLock === null && WAITING_FOR_WORK.test(t.note))
}
const WAITING_FOR_WORK = /^(idle\b|(waiting for events|waiting for a signal to pass on|waiting on a lock or condition|waiting in Atomics\.wait)$)/

const EVENT_LOOP_WAIT = /uv__io_poll|epoll_wait|epoll_pwait/
const LOCK_WAIT = /pthread_cond_(timed)?wait|__futex_abstimed_wait|futex_wait|sem_(timed)?wait|pthread_mutex_lock/

function diagnose (t: RawThread, kind: ThreadKind, js: JsFrame[] | null, source: JavaScriptSource, native: NativeFrame[]): string {
  if (kind === 'guru-meditation') return t.isWatchdog ? 'the guru-meditation watchdog (capturing this report)' : 'the guru-meditation reporter (writing this report)'
  if (!t.captured && t.missingReason) return `native stack not captured: ${t.missingReason}`
  const symbols = native.map(f => f.symbol)
  const top = native[0]?.symbol ?? ''
  if (t.jsRequested && !t.jsAnswered && js && js.length > 0 && source === 'code-map') {
    // The thread could not answer, but the code map names where it is.
    if (t.vmState === 'EXTERNAL') return `blocked in a native call from ${callerInApp(js)}`
    if (t.vmState === 'ATOMICS_WAIT') return `waiting in Atomics.wait in ${callerInApp(js)}`
    if (t.vmState === 'GC') return `in garbage collection, from ${where(js[0])}`
    return `running JavaScript in ${where(js[0])} (did not answer the request for its JavaScript stack in time)`
  }
  if (t.vmState === 'GC') return 'in garbage collection' // it cannot answer an interrupt meanwhile
  if (t.jsRequested && !t.jsAnswered) {
    const state = t.vmState ? ` (VM state ${t.vmState})` : ''
    return `did not answer the request for its JavaScript stack in time${state}: ` +
      (t.vmState === 'EXTERNAL' ? 'blocked in a native call' : 'busy and not reaching an interrupt check')
  }
  if (js && js.length > 0) {
    if (t.vmState === 'EXTERNAL') return `blocked in a native call from ${callerInApp(js)}`
    if (t.vmState === 'ATOMICS_WAIT') return `waiting in Atomics.wait in ${callerInApp(js)}`
    return `running JavaScript in ${where(js[0])}`
  }
  if (t.vmState === 'ATOMICS_WAIT') return 'waiting in Atomics.wait'
  if (symbols.some(s => EVENT_LOOP_WAIT.test(s))) return js ? 'idle in the event loop' : 'waiting for events'
  if (kind === 'libuv-threadpool' && symbols.some(s => LOCK_WAIT.test(s))) return 'idle, waiting for work'
  if (kind === 'libuv-threadpool') return threadpoolWork(t, symbols)
  if (kind === 'signal' && symbols.some(s => LOCK_WAIT.test(s))) return 'waiting for a signal to pass on'
  if (kind === 'v8-platform' && symbols.some(s => LOCK_WAIT.test(s))) return 'idle, waiting for tasks'
  if (LOCK_WAIT.test(top)) return 'waiting on a lock or condition'
  // Node's inspector I/O thread sleeps on a semaphore until SIGUSR1 starts the inspector.
  if (kind === 'inspector' && symbols.includes('uv_sem_wait')) {
    return `idle, waiting for SIGUSR1 to start the inspector${t.fromProc ? ' (its stack read from /proc: it blocks signals)' : ''}`
  }
  if (t.fromProc) return 'blocks signals: its stack was read while it waits in a system call'
  return ''
}
