// The report as data. Generators (src/sections/) fill it, views
// (src/format/) render it; nothing here knows about text layout. Everything
// is JSON-serializable, so the JSON view is the model itself.

export const SCHEMA_VERSION = 2

export interface Report {
  schema: number
  package: PackageInfo
  threads: ThreadInfo[]
  /** Each deadlock among threads waiting for mutexes: its threads' tids in wait order, from the lowest. */
  deadlocks: number[][]
  /** Several captures folded per thread (gmr --samples, generateReport({ samples }), a stall report's); null for a report of one. */
  samples: Samples | null
  capture: CaptureInfo
  greenThreads: GreenThreads
  memory: Memory
  /** Every shared object mapped in, with what symbolizing a frame offline needs. */
  loadedObjects: LoadedObject[]
  processes: ProcessInfo[]
  configuration: Configuration
  sections: UserSection[]
  /** Problems met while reporting (a section that threw, a thread that did not answer). */
  errors: string[]
}

export interface PackageInfo {
  serviceName: string
  product: string
  vendor: string
  version: string
  application: { name: string, version: string } | null
  node: string
  v8: string
  uv: string
  platform: string
  arch: string
  pid: number
  ppid: number
  hostname: string
  cwd: string
  argv: string[]
  execArgv: string[]
  uptimeSeconds: number
  generatedAt: string
  /** What asked for the report: `signal`, `file` or `api`, with its detail. */
  trigger: { kind: string, detail: string, coalesced: number }
  /**
   * Who wrote the report: `main thread (event loop)`, `main thread
   * (interrupt: it was busy running JavaScript)`, `reporter environment
   * (the main thread was blocked)`, `reporter environment (the main thread
   * could not write it)`, or `caller` for the API.
   */
  writtenBy: string
}

export type ThreadKind =
  | 'main' | 'worker' | 'libuv-threadpool' | 'v8-platform' | 'inspector'
  | 'signal' | 'guru-meditation' | 'other'

export interface JsFrame {
  function: string
  file: string
  line: number
  column: number
}

export interface NativeFrame {
  address: string
  symbol: string
  module: string
  /** `symbol+0x1c`, or `module+0x1234` when no symbol covers the address. */
  location: string
  /**
   * The JavaScript function this frame runs, from the code map: a frame in
   * JIT code or in the interpreter. `line`/`column` are the function's start.
   */
  javascript: JsFrame | null
}

/**
 * Where a thread's JavaScript stack comes from: `interrupt` (the thread
 * answered; exact lines and columns), `code-map` (it did not, being blocked
 * in native code or busy: V8's stack sample named by the code map, with the
 * line and column where each function starts), or null (no stack).
 */
export type JavaScriptSource = 'interrupt' | 'code-map' | null

export interface ThreadInfo {
  tid: number
  /** The OS thread's name (/proc/self/task/TID/comm). */
  name: string
  kind: ThreadKind
  /** worker_threads' threadId (0: the main thread); null when not a JS thread or not known yet. */
  threadId: number | null
  /** The `name` option of its Worker, where Node knows it (22 and later); else null. */
  workerName: string | null
  /** OS scheduler state: running, sleeping, disk wait, stopped, zombie. */
  state: string
  cpu: { userMs: number, systemMs: number }
  /** V8's VM state for threads with an isolate: JS, GC, EXTERNAL, IDLE, ... */
  vmState: string | null
  /** JavaScript stack, innermost frame first; null when not a JS thread. */
  javascript: JsFrame[] | null
  javascriptSource: JavaScriptSource
  /**
   * The async functions awaiting below its JavaScript stack (the route into
   * the async function it is busy in), innermost first: read by each
   * thread that answers its interrupt; null for the others, or where they
   * could not be read safely.
   */
  asyncCallers: JsFrame[] | null
  native: NativeFrame[]
  /** How long the capture signal's handler held the thread, in µs; null when not captured. */
  interruptedUs: number | null
  /** Asleep waiting for a mutex: its address and the tid of the thread that holds it; else null. */
  waitingForLock: { address: string, heldBy: number } | null
  /** One line saying what the thread is doing, or why a stack is missing. */
  note: string
}

export interface CaptureInfo {
  /** Microseconds spent signalling and copying every thread. */
  signalPhaseUs: number
  /** Microseconds waiting for JavaScript stacks. */
  jsPhaseUs: number
  totalUs: number
  captureSignal: string | null
}

/** Node's green threads: each JavaScript thread's pending async work. */
export interface GreenThreads {
  /** One line: handles by type, how many keep the process alive, requests in flight, the most overdue timer. */
  summary: string
  threads: GreenThread[]
}

/** One JavaScript thread's event loop, read natively: also while the thread is stuck. */
export interface GreenThread {
  tid: number
  threadId: number | null
  workerName: string | null
  /** `main thread`, `worker 3 "resizer"`. */
  label: string
  /** `waiting for events`, `running`, or `has not turned for 5.2 s`. */
  loop: string
  /** libuv's count of active handles and requests (requests: fs, dns, writes, ... in flight). */
  activeHandles: number
  activeRequests: number
  handles: GreenHandle[]
  /** Handles past the limit (greenThreadsLimit), counted only. */
  more: number
  /** Why the list is incomplete (it changed while it was read); null when complete. */
  problem: string | null
  /** Pending promises (by creation site with trackPromises 'sites'), when trackPromises is on; else null. */
  promises: GreenPromises | null
  /**
   * Node's active resources by type (process.getActiveResourcesInfo(): requests
   * in flight such as FSReqCallback or GetAddrInfoReqWrap, handles, timers),
   * read on the thread that wrote the report; null for other threads, and
   * when it could not run JavaScript.
   */
  resources: Record<string, number> | null
  /** Its JavaScript timers with their callbacks, soonest first, when trackPromises is on; else null. */
  timers: GreenTimers | null
}

export interface GreenTimers {
  timers: GreenTimer[]
  /** Timers past the limit. */
  more: number
  /** Timers past the tracker's capacity: counted only. */
  untracked: number
}

export interface GreenTimer {
  /** The callback; '' for an anonymous one. */
  function: string
  file: string
  line: number
  column: number
  /** ms until due, negative when overdue; null while it is being run. */
  dueInMs: number | null
  /** The delay it was set with. */
  afterMs: number
  /** setInterval. */
  repeat: boolean
}

export interface GreenPromises {
  /** Pending promises tracked. */
  pending: number
  /**
   * Sites were recorded (trackPromises 'sites'): the groups are by creating function.
   * false (trackPromises true): one group of them all, with no site (function and file '').
   */
  sites: boolean
  /** The sites are named (false: no sites recorded, or the code map is off, so every promise is in one unnamed group). */
  named: boolean
  /** Pending past the tracker's capacity: counted, not placed. */
  untracked: number
  /** By the function that created them, largest first (at most greenThreadsLimit); without sites, one group. */
  groups: PromiseGroup[]
  /** Groups past the limit. */
  moreGroups: number
}

export interface PromiseGroup {
  /** The function that created them; '' when no JavaScript frame did (Node's internals), or when no site was recorded. */
  function: string
  file: string
  /** The function's start (from the code map). */
  line: number
  column: number
  count: number
  /**
   * Age of the oldest, in ms: from the start of the event-loop turn that created it (libuv's
   * loop time, as Node's timers count), so at most that turn's length more than its true age.
   */
  oldestMs: number
}

/** A libuv handle: a socket, server, timer, child process, watcher, signal handler. */
export interface GreenHandle {
  /** libuv's type name: tcp, udp, pipe, tty, timer, process, fs_event, signal, async, ... */
  type: string
  /** One line: `tcp server listening on 127.0.0.1:8080`, `timer overdue by 4.2 s`. */
  description: string
  active: boolean
  /** Referenced: keeps the event loop, and so the process, alive. */
  referenced: boolean
  closing: boolean
  /** One of Node's own (its JavaScript timers' libuv timer, the immediates' check and idle handles). */
  node: boolean
  /** Machinery every loop has (Node's own handles but its timer, unreferenced async wakeups): the text view folds these into one line. */
  machinery: boolean
  fd: number | null
  local?: string
  remote?: string
  /** Timers: ms until due, negative when overdue; null when stopped. */
  dueInMs?: number | null
  repeatMs?: number
  pid?: number
  signal?: string
  path?: string
}

/** The process's memory and descriptors, and each JavaScript thread's heap. */
export interface Memory {
  /** From /proc/self/status (bytes), /proc/self/fd and RLIMIT_NOFILE, read natively at the capture; a figure that could not be read is null. */
  process: ProcessMemory
  /** Every JavaScript thread (main first, then workers by threadId), also those whose heap was never recorded (heap null). */
  threads: ThreadMemory[]
  /** One line per heap near its limit (`worker 1 (tid 4243): its heap is 93% of its limit …`), computed here, rendered as is. */
  warnings: string[]
}

export interface ProcessMemory {
  rssBytes: number | null
  /** VmHWM: the highest RSS so far. */
  peakRssBytes: number | null
  swapBytes: number | null
  /** RssAnon: anonymous memory (heaps, stacks); RssFile: file-backed (code, mapped files). */
  anonymousBytes: number | null
  fileBackedBytes: number | null
  /** Open file descriptors. */
  fds: number | null
  /** RLIMIT_NOFILE's soft and hard limits; null when unlimited or not read. */
  fdLimit: number | null
  fdHardLimit: number | null
}

export interface ThreadMemory {
  tid: number
  threadId: number | null
  workerName: string | null
  /** `main thread`, `worker 3 "resizer"`. */
  label: string
  /** Its heap as last recorded on its own thread; null when it never was (a thread the library has not met). */
  heap: HeapFigures | null
}

export interface HeapFigures {
  /** What recorded them: `report` (the thread answered this report), `gc` (after its last collection: it could not answer), `earlier` (at an earlier interrupt: when the library met it, or an earlier report). */
  source: 'report' | 'gc' | 'earlier'
  /** When (Unix ms), and how long before the capture ended (ms). */
  atMs: number
  ageMs: number
  usedBytes: number
  totalBytes: number
  /** V8's heap_size_limit: the old generation's limit plus the young generation's reservation. */
  limitBytes: number
  /** The old generation's limit, where known (a worker's resourceLimits, the main thread's --max-old-space-size); else null. */
  oldGenerationLimitBytes: number | null
  /** The old generation's size: the pages V8 committed to every space but the young generation's (new_space, new_large_object_space). */
  oldGenerationBytes: number
  /**
   * oldGenerationBytes against the old generation's limit, what V8 holds it against before it ends the
   * thread with "heap out of memory" (against limitBytes when that is not known), in %.
   */
  percentOfLimit: number
  /** percentOfLimit is 85 or more (a 16 MB worker dies at about 92). */
  nearLimit: boolean
  externalBytes: number
  /** Node's count of ArrayBuffer memory (part of external): the thread that wrote the report only; else null. */
  arrayBuffersBytes: number | null
  spaces: Array<{ name: string, usedBytes: number, sizeBytes: number }>
  /** Collections (scavenges, minor and full mark-compacts) since the library met the thread, and their total pause. */
  gcCount: number
  gcTotalMs: number
  lastGc: { kind: string, pauseMs: number, atMs: number } | null
}

export interface ProcessInfo {
  pid: number
  ppid: number
  command: string
  state: string
  user: string
  uids: { real: number, effective: number, saved: number }
  gids: { real: number, effective: number, saved: number }
  children: ProcessInfo[]
}

export interface Configuration {
  /** The application's `conf`, flattened to `group.key` → value, secrets masked. */
  application: Record<string, string>
  /** Node's runtime configuration: execArgv, NODE_OPTIONS, resource limits. */
  runtime: Record<string, string>
}

export interface UserSection {
  name: string
  /** A string or any JSON value from the generator; null when it failed. */
  content: unknown
  /** Why content is missing: the generator threw, timed out, or its thread is stuck. */
  error: string | null
}

/** A shared object mapped into the process (the executable, libraries, the vdso). */
export interface LoadedObject {
  path: string
  /** Load bias, hex (0 for a non-PIE executable): a native frame's address minus this is what addr2line and nm take. */
  base: string
  /** Its lowest mapped address, hex. */
  mapped: string
  /** GNU build ID, hex, to find the very file (or its debug symbols) later; null when it has none. */
  buildId: string | null
  /** A native frame of this report is in it: the text view lists these, the JSON every object. */
  inStacks: boolean
}

/** Several captures of the process folded per thread; the report's other sections are the last capture's. */
export interface Samples {
  /** Captures taken. */
  count: number
  /** The pause between two, in ms. */
  intervalMs: number
  /** From the first capture to the last, in ms. */
  coveredMs: number
  threads: SampledThread[]
}

export interface SampledThread {
  tid: number
  /** `#1695 (main)`, `#1704 (worker 1 "resizer")`. */
  label: string
  /** In how many captures the thread was there. */
  seen: number
  /** The same stack (functions and lines) in every capture. */
  stuck: boolean
  /** Where it was (its innermost JavaScript frame, else its innermost named native one) and in how many captures, most first. */
  places: Array<{ where: string, count: number }>
}
