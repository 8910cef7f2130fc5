// Text view: the oslo.reports layout OpenStack operators already read, with
// 72-column `=` boxes per section and `key = value` lines.
import path from 'node:path'
import type { GreenHandle, GreenThread, GreenTimer, HeapFigures, PromiseGroup, JsFrame, NativeFrame, ProcessInfo, Report, ThreadInfo, ThreadMemory } from '../model'
import { duration } from '../util/duration'
import { safeJsonStringify } from '../util/json-safe'
import { threadLabel } from '../analysis/locks'

const WIDTH = 72
const RULE = '='.repeat(WIDTH)

/** Centred like Python's `'{: ^n}'`: an odd space goes to the right; never flush with the frame. */
function centre (text: string, width: number): string {
  const pad = Math.max(width - text.length, 2)
  const left = Math.floor(pad / 2)
  return ' '.repeat(left) + text + ' '.repeat(pad - left)
}

function box (title: string): string[] {
  return [RULE, `====${centre(title, WIDTH - 8)}====`, RULE]
}

function subHeading (text: string): string {
  return `------${centre(text, WIDTH - 12)}------`
}

/** Text of a model field; the model may be partial when a generator failed. */
function str (value: unknown): string {
  try {
    return typeof value === 'string' ? value : String(value)
  } catch {
    return '[unprintable]'
  }
}

function list<T> (value: T[] | null | undefined): T[] {
  return Array.isArray(value) ? value : []
}

/** Multi-line text indented as a block. */
function indented (text: string, indent: string): string[] {
  return text.split('\n').map((line) => indent + line)
}

/** oslo's `key = value`; a list puts each item on its own line, two spaces in. */
function kv (key: string, value: unknown, indent = ''): string[] {
  if (Array.isArray(value)) {
    return [`${indent}${key} = `, ...value.flatMap((item) => indented(str(item), `${indent}  `))]
  }
  const [first, ...rest] = str(value).split('\n')
  return [`${indent}${key} = ${first}`, ...rest.map((line) => `${indent}  ${line}`)]
}

function ms (us: unknown): string {
  return `${(Number(us) / 1000).toFixed(2)} ms`
}

function packageLines (r: Report): string[] {
  const p = r.package
  const app = p.application ? `${str(p.application.name)} ${str(p.application.version)}`.trim() : '(none)'
  const t = p.trigger
  const coalesced = t && t.coalesced > 0 ? ` (${t.coalesced} more coalesced)` : ''
  return [
    ...kv('product', p.product),
    ...kv('vendor', p.vendor),
    ...kv('version', p.version),
    ...kv('service name', p.serviceName),
    ...kv('application', app),
    ...kv('node', p.node),
    ...kv('v8', p.v8),
    ...kv('uv', p.uv),
    ...kv('platform', p.platform),
    ...kv('arch', p.arch),
    ...kv('pid', p.pid),
    ...kv('ppid', p.ppid),
    ...kv('hostname', p.hostname),
    ...kv('cwd', p.cwd),
    ...kv('argv', list(p.argv)),
    ...kv('execArgv', list(p.execArgv)),
    ...kv('uptime', `${str(p.uptimeSeconds)} s`),
    ...kv('generated at', p.generatedAt),
    ...kv('trigger', t ? `${str(t.kind)} ${str(t.detail)}`.trim() + coalesced : '(unknown)'),
    ...kv('written by', p.writtenBy)
  ]
}

function jsFrame (f: JsFrame): string {
  const fn = f.function ? str(f.function) : '<anonymous>'
  let where = f.file ? str(f.file) : '<unknown>'
  if (f.line > 0) where += `:${f.line}${f.column > 0 ? `:${f.column}` : ''}`
  return `  at ${fn} (${where})`
}

/** `JS: fn (file:line)` for a native frame running JavaScript (file's basename, the function's start line). */
function jsName (f: JsFrame): string {
  const fn = f.function ? str(f.function) : '<anonymous>'
  const file = f.file ? path.basename(str(f.file)) : '<unknown>'
  return `JS: ${fn} (${file}${f.line > 0 ? `:${f.line}` : ''})`
}

function nativeFrames (frames: NativeFrame[]): string[] {
  // Index column as wide as the largest index, so addresses line up.
  const width = String(Math.max(frames.length - 1, 0)).length
  return frames.map((f, i) => {
    const module = f.module ? `  (${path.basename(str(f.module))})` : ''
    const location = str(f.location || f.symbol)
    // JIT code has no symbol: the JS function takes the place of `??`;
    // an interpreter frame keeps its builtin and gets the function after it.
    if (f.javascript) {
      if (!f.symbol && !f.module) return `  #${String(i).padEnd(width)}  ${str(f.address)}  ${jsName(f.javascript)}`
      return `  #${String(i).padEnd(width)}  ${str(f.address)}  ${location}${module}  ${jsName(f.javascript)}`
    }
    return `  #${String(i).padEnd(width)}  ${str(f.address)}  ${location}${module}`
  })
}

function threadLines (t: ThreadInfo): string[] {
  const name = t.name ? ` ${str(t.name)}` : ''
  const worker = typeof t.threadId === 'number' && t.kind === 'worker'
    ? ` ${str(t.threadId)}${t.workerName ? ` "${str(t.workerName)}"` : ''}`
    : ''
  const lines = [subHeading(`Thread #${str(t.tid)}${name} (${str(t.kind)}${worker})`)]
  lines.push(...kv('state', t.state))
  if (t.cpu) lines.push(...kv('cpu', `user ${str(t.cpu.userMs)} ms, system ${str(t.cpu.systemMs)} ms`))
  if (t.vmState !== null && t.vmState !== undefined) lines.push(...kv('vm state', t.vmState))
  if (t.note) lines.push(...kv('note', t.note))
  if (Array.isArray(t.javascript)) {
    lines.push(t.javascriptSource === 'code-map' ? 'JavaScript stack (from the code map: function start lines):' : 'JavaScript stack:')
    lines.push(...(t.javascript.length > 0 ? t.javascript.map(jsFrame) : ['  (no frames)']))
    // As Node's error stacks write them: after the synchronous frames.
    lines.push(...list(t.asyncCallers).map(f => jsFrame(f).replace(/^ {2}at /, '  at async ')))
  }
  const native = list(t.native)
  lines.push('Native stack:')
  lines.push(...(native.length > 0 ? nativeFrames(native) : [`  (${t.note ? str(t.note) : 'not captured'})`]))
  return lines
}

function threadsLines (r: Report): string[] {
  const threads = list(r.threads)
  const c = r.capture
  const phases = c
    ? ` (signal phase ${ms(c.signalPhaseUs)}, JavaScript stacks ${ms(c.jsPhaseUs)}` +
      `${c.captureSignal ? `, capture signal ${str(c.captureSignal)}` : ''})`
    : ''
  const summary = `${threads.length} thread${threads.length === 1 ? '' : 's'}, ` +
    `capture took ${c ? ms(c.totalUs) : '(unknown)'}${phases}`
  // A deadlock on top, where it is seen first (each thread's note says so too).
  const byTid = new Map(threads.map(t => [t.tid, t]))
  const label = (tid: number): string => { const t = byTid.get(tid); return t ? threadLabel(t) : `#${tid}` }
  const found = guarded(() => list(r.deadlocks).map(chain => `DEADLOCK: ${[...chain, chain[0]].map(label).join(' waits for ')}`))
  // Each thread is fenced: one malformed entry must not hide the others.
  return [summary, ...found, ...threads.flatMap((t) => ['', ...guarded(() => threadLines(t))])]
}

function greenHandle (h: GreenHandle): string {
  const tags = [
    h.active ? '' : 'inactive',
    h.referenced ? '' : 'unref',
    h.closing ? 'closing' : ''
  ].filter(Boolean)
  return `  ${str(h.description)}${tags.length > 0 ? `  [${tags.join(', ')}]` : ''}`
}

/** `14 × awaitApproval (orders.js:88), oldest 5m 03s`. */
function promiseGroupLine (g: PromiseGroup): string {
  const where = g.file ? ` (${path.basename(str(g.file))}${g.line > 0 ? `:${str(g.line)}` : ''})` : ''
  const what = g.function ? str(g.function) : g.file ? '<anonymous>' : "Node's internals (no JavaScript frame)"
  return `${str(g.count)} × ${what}${where}, oldest ${duration(g.oldestMs)}`
}

/** `every 1.0 s: refreshCache (cache.js:12), due in 0.4 s`. */
function timerLine (tm: GreenTimer): string {
  const fn = tm.function ? str(tm.function) : '<anonymous>'
  const where = tm.file ? ` (${path.basename(str(tm.file))}${tm.line > 0 ? `:${str(tm.line)}` : ''})` : ''
  const due = tm.dueInMs === null ? 'running now' : tm.dueInMs >= 0 ? `due in ${duration(tm.dueInMs)}` : `overdue by ${duration(tm.dueInMs)}`
  return `${tm.repeat ? 'every' : 'after'} ${duration(tm.afterMs)}: ${fn}${where}, ${due}`
}

function greenThreadLines (g: GreenThread): string[] {
  const requests = g.activeRequests > 0 ? `, ${str(g.activeRequests)} request${g.activeRequests === 1 ? '' : 's'} in flight` : ''
  const lines = [subHeading(`${str(g.label)} (tid ${str(g.tid)}): ${str(g.loop)}`)]
  lines.push(`${str(g.activeHandles)} active handle${g.activeHandles === 1 ? '' : 's'}${requests}`)
  // What every loop has (see GreenHandle.machinery): one line for it.
  const handles = list(g.handles).filter((h) => !h.machinery)
  const own = list(g.handles).length - handles.length
  lines.push(...(handles.length > 0 ? handles.map(greenHandle) : ['  (no handles)']))
  if (own > 0) lines.push(`  + ${str(own)} of Node's own (async wakeups, the immediates' check and idle handles)`)
  if (g.more > 0) lines.push(`  … and ${str(g.more)} more`)
  if (g.problem) lines.push(`  (incomplete: ${str(g.problem)})`)
  if (g.resources) {
    const counts = Object.entries(g.resources).sort((a, b) => b[1] - a[1]).map(([type, n]) => `${str(n)} ${str(type)}`)
    lines.push(`Node's active resources: ${counts.length > 0 ? counts.join(', ') : 'none'}`)
  }
  const tm = g.timers
  if (tm) {
    const untracked = tm.untracked > 0 ? ` (and ${str(tm.untracked)} past the tracker's capacity)` : ''
    const timers = list(tm.timers)
    lines.push(`${str(timers.length + tm.more)} JavaScript timer${timers.length + tm.more === 1 ? '' : 's'}${untracked}`)
    lines.push(...timers.map((timer) => `  ${timerLine(timer)}`))
    if (tm.more > 0) lines.push(`  … and ${str(tm.more)} more`)
  }
  const p = g.promises
  if (p) {
    const untracked = p.untracked > 0 ? ` (and ${str(p.untracked)} past the tracker's capacity)` : ''
    const pending = `${str(p.pending)} pending promise${p.pending === 1 ? '' : 's'}${untracked}`
    if (p.sites === false) {
      // Counts and ages only: one group, with no site.
      const oldest = list(p.groups)[0]
      lines.push(`${pending}${oldest ? `, the oldest ${duration(oldest.oldestMs)}` : ''} (sites not recorded: trackPromises 'sites' records them)`)
    } else {
      lines.push(`${pending}${p.named === false ? ' (their sites are not named: the code map is off)' : ''}`)
      lines.push(...list(p.groups).map((group) => `  ${promiseGroupLine(group)}`))
    }
    if (p.moreGroups > 0) lines.push(`  … and ${str(p.moreGroups)} more sites`)
  }
  return lines
}

function greenThreadsLines (r: Report): string[] {
  const g = r.greenThreads
  return [str(g.summary), ...list(g.threads).flatMap((t) => ['', ...guarded(() => greenThreadLines(t))])]
}

function mib (bytes: unknown): string {
  return typeof bytes === 'number' ? `${(bytes / 1048576).toFixed(1)} MiB` : '(unknown)'
}

function heapSource (h: HeapFigures): string {
  const age = `${duration(h.ageMs)} old`
  if (h.source === 'report') return `recorded for this report (${age})`
  if (h.source === 'gc') return `as of its last garbage collection, ${age} (it could not answer)`
  return `as of an earlier interrupt (when it was met, or an earlier report), ${age} (it could not answer)`
}

function threadMemoryLines (t: ThreadMemory): string[] {
  const lines = [subHeading(`${str(t.label)} (tid ${str(t.tid)})`)]
  const h = t.heap
  if (!h) return [...lines, 'heap = (never recorded: the library has not met this thread yet)']
  const limit = h.oldGenerationLimitBytes !== null
    ? `old generation ${mib(h.oldGenerationBytes)}, ${str(h.percentOfLimit)}% of its ${mib(h.oldGenerationLimitBytes)} limit (V8's heap limit ${mib(h.limitBytes)})`
    : `old generation ${mib(h.oldGenerationBytes)}, ${str(h.percentOfLimit)}% of V8's heap limit ${mib(h.limitBytes)}`
  lines.push(...kv('heap', `${mib(h.usedBytes)} used of ${mib(h.totalBytes)}, ${limit}${h.nearLimit ? '  [NEAR LIMIT]' : ''}`))
  lines.push(...kv('figures', heapSource(h)))
  const buffers = h.arrayBuffersBytes !== null ? `, of which array buffers ${mib(h.arrayBuffersBytes)}` : ''
  lines.push(...kv('external', `${mib(h.externalBytes)}${buffers}`))
  const last = h.lastGc ? `; last: ${str(h.lastGc.kind)}, ${str(h.lastGc.pauseMs.toFixed(2))} ms pause, ${new Date(h.lastGc.atMs).toISOString()}` : ''
  lines.push(...kv('gc', `${str(h.gcCount)} collection${h.gcCount === 1 ? '' : 's'} since met, ${str(h.gcTotalMs.toFixed(1))} ms in all${last}`))
  lines.push('spaces (used / size):')
  lines.push(...list(h.spaces).map(sp => `  ${str(sp.name).padEnd(26)} ${mib(sp.usedBytes).padStart(12)} / ${mib(sp.sizeBytes)}`))
  return lines
}

function memoryLines (r: Report): string[] {
  const m = r.memory
  const p = m.process
  const fds = p.fds === null ? '(unknown)' : str(p.fds)
  const limit = p.fdLimit === null ? 'no limit' : `limit ${str(p.fdLimit)}${p.fdHardLimit !== null && p.fdHardLimit !== p.fdLimit ? ` (hard ${str(p.fdHardLimit)})` : ''}`
  return [
    ...list(m.warnings).map(w => `WARNING: ${str(w)}`),
    ...kv('rss', `${mib(p.rssBytes)} (peak ${mib(p.peakRssBytes)}), anonymous ${mib(p.anonymousBytes)}, file-backed ${mib(p.fileBackedBytes)}`),
    ...kv('swap', mib(p.swapBytes)),
    ...kv('file descriptors', `${fds} open, ${limit}`),
    ...list(m.threads).flatMap(t => ['', ...guarded(() => threadMemoryLines(t))])
  ]
}

function processLines (p: ProcessInfo, indent: string): string[] {
  const idLine = (ids: ProcessInfo['uids']): string =>
    ids ? `real ${str(ids.real)}, effective ${str(ids.effective)}, saved ${str(ids.saved)}` : '(unknown)'
  const uid = p.uids ? str(p.uids.real) : '?'
  return [
    `${indent}Process ${str(p.pid)} (under ${str(p.ppid)}) [ run by: ${str(p.user)} (${uid}), state: ${str(p.state)} ]`,
    `${indent}  uids: ${idLine(p.uids)}`,
    `${indent}  gids: ${idLine(p.gids)}`,
    `${indent}  command: ${str(p.command)}`,
    ...list(p.children).flatMap((child) => processLines(child, `${indent}    `))
  ]
}

function samplesLines (r: Report): string[] {
  const s = r.samples
  if (!s) return []
  const head = `${s.count} captures, ${duration(Number(s.intervalMs))} apart, over ${duration(Number(s.coveredMs))}; the other sections are the last one's`
  return [head, '', ...list(s.threads).map(t => {
    const places = list(t.places).map(p => `${p.count}/${s.count} in ${str(p.where)}`).join(', ')
    const missing = t.seen < s.count ? ` (in ${t.seen} of the ${s.count} captures)` : ''
    return `${str(t.label)}: ${places}${missing}${t.stuck ? '  [STUCK: the same stack in every capture]' : ''}`
  })]
}

// Short: the objects this report's native frames are in; the JSON view
// lists every one.
function loadedObjectsLines (r: Report): string[] {
  const all = list(r.loadedObjects)
  const shown = all.filter(o => o?.inStacks)
  const lines = shown.map(o => `${str(o.path)}  base ${str(o.base)}  build-id ${o.buildId === null ? '(none)' : str(o.buildId)}`)
  const rest = all.length - shown.length
  if (rest > 0) lines.push(`… and ${rest} more loaded object${rest === 1 ? '' : 's'} no frame is in (the JSON view lists them all)`)
  return lines.length > 0 ? lines : ['(none read)']
}

function processesLines (r: Report): string[] {
  const roots = list(r.processes)
  return roots.length > 0 ? roots.flatMap((p) => processLines(p, '')) : ['(no process information)']
}

function groupLines (name: string, values: Record<string, string> | null | undefined): string[] {
  const keys = values ? Object.keys(values).sort() : []
  const body = keys.length > 0 ? keys.flatMap((k) => kv(k, values?.[k], '  ')) : ['  (none)']
  return [`${name}:`, ...body]
}

function configurationLines (r: Report): string[] {
  return [...groupLines('application', r.configuration?.application), ...groupLines('runtime', r.configuration?.runtime)]
}

function userSectionLines (s: Report['sections'][number]): string[] {
  if (s.error) return [`(section unavailable: ${str(s.error)})`]
  return (typeof s.content === 'string' ? s.content : safeJsonStringify(s.content, 2)).split('\n')
}

function failure (err: unknown): string {
  try {
    return `(could not render: ${String((err as Error).message)})`
  } catch {
    return '(could not render)'
  }
}

function guarded (lines: () => string[]): string[] {
  try {
    return lines()
  } catch (err) {
    return [failure(err)]
  }
}

/** The report as oslo.reports text. Never throws: a part that fails to render says so in place. */
export function renderText (report: Report): string {
  const lines = [...box('Guru Meditation'), '|'.repeat(WIDTH), '', '']
  // One line at a time: a section of hundreds of thousands of lines (many
  // threads, deep stacks) spread into one call would exceed the stack.
  const section = (title: string, body: () => string[]): void => {
    for (const line of [...box(title), ...guarded(body)]) lines.push(line)
  }
  try {
    section('Package', () => packageLines(report))
    section('Threads', () => threadsLines(report))
    if (report.samples) section('Samples', () => samplesLines(report))
    section('Green Threads', () => greenThreadsLines(report))
    section('Memory', () => memoryLines(report))
    section('Loaded Objects', () => loadedObjectsLines(report))
    section('Processes', () => processesLines(report))
    section('Configuration', () => configurationLines(report))
    for (const s of list(report.sections)) section(str(s?.name), () => userSectionLines(s))
    if (list(report.errors).length > 0) section('Errors', () => report.errors.map(str))
  } catch (err) {
    lines.push(failure(err))
  }
  // A clear end, for whoever reads a report out of a log with other output.
  lines.push(...box('End of Guru Meditation Report'))
  return lines.join('\n') + '\n'
}
