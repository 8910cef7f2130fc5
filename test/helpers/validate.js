'use strict'
// The one report validator every test that reads a report goes through (as
// Node's test/common/report.js validateContent does for its reports): the
// JSON view against the schema the README documents (README.md, "JSON
// schema": every field, its type, which may be null or absent), and the text
// view against itself and, when both views of one report are at hand,
// against the JSON: the same threads, in order, with the same frames.
// It throws an Error listing every mismatch (at most 20), naming the path.

const THREAD_KINDS = ['main', 'worker', 'libuv-threadpool', 'v8-platform', 'inspector', 'signal', 'other', 'guru-meditation']
const WRITTEN_BY = ['main thread (event loop)', 'main thread (interrupt: it was busy running JavaScript)',
  'reporter environment (the main thread was blocked)', 'reporter environment (the main thread could not write it)', 'caller']
const TRIGGER_KINDS = ['signal', 'file', 'cli', 'stall', 'api']

// A small schema language: a type name ('string', 'integer', 'number',
// 'boolean', 'any'), an array [item], an object of fields, or one of these
// wrapped by nullable() / optional() / oneOf().
const nullable = type => ({ nullable: type })
const optional = type => ({ optional: type })
const oneOf = (...values) => ({ oneOf: values })
const record = type => ({ record: type })

const JS_FRAME = { function: 'string', file: 'string', line: 'integer', column: 'integer' }
const IDS = { real: 'integer', effective: 'integer', saved: 'integer' }
const PROCESS = { pid: 'integer', ppid: 'integer', command: 'string', state: 'string', user: 'string', uids: IDS, gids: IDS }
PROCESS.children = [PROCESS]

const SCHEMA = {
  schema: oneOf(2),
  package: {
    serviceName: 'string', product: 'string', vendor: 'string', version: 'string',
    application: nullable({ name: 'string', version: 'string' }),
    node: 'string', v8: 'string', uv: 'string', platform: 'string', arch: 'string',
    pid: 'integer', ppid: 'integer', hostname: 'string', cwd: 'string',
    argv: ['string'], execArgv: ['string'], uptimeSeconds: 'number', generatedAt: 'iso-date',
    trigger: { kind: oneOf(...TRIGGER_KINDS), detail: 'string', coalesced: 'count' },
    writtenBy: oneOf(...WRITTEN_BY)
  },
  threads: [{
    tid: 'integer', name: 'string', kind: oneOf(...THREAD_KINDS),
    threadId: nullable('integer'), workerName: nullable('string'), state: 'string',
    cpu: { userMs: 'number', systemMs: 'number' }, vmState: nullable('string'),
    javascript: nullable([JS_FRAME]),
    javascriptSource: oneOf('interrupt', 'code-map', null),
    asyncCallers: nullable([JS_FRAME]),
    native: [{ address: 'hex', symbol: 'string', module: 'string', location: 'string', javascript: nullable(JS_FRAME) }],
    interruptedUs: nullable('number'),
    waitingForLock: nullable({ address: 'hex', heldBy: 'integer' }),
    note: 'string'
  }],
  deadlocks: [['integer']],
  samples: nullable({
    count: 'count', intervalMs: 'count', coveredMs: 'count',
    threads: [{ tid: 'integer', label: 'string', seen: 'count', stuck: 'boolean', places: [{ where: 'string', count: 'count' }] }]
  }),
  capture: { signalPhaseUs: 'number', jsPhaseUs: 'number', totalUs: 'number', captureSignal: nullable('string') },
  greenThreads: {
    summary: 'string',
    threads: [{
      tid: 'integer', threadId: nullable('integer'), workerName: nullable('string'), label: 'string', loop: 'string',
      activeHandles: 'count', activeRequests: 'count',
      handles: [{
        type: 'string', description: 'string', active: 'boolean', referenced: 'boolean', closing: 'boolean',
        node: 'boolean', machinery: 'boolean', fd: nullable('integer'),
        local: optional('string'), remote: optional('string'), dueInMs: optional(nullable('number')),
        repeatMs: optional('number'), pid: optional('integer'), signal: optional('string'), path: optional('string')
      }],
      more: 'count', problem: nullable('string'),
      resources: nullable(record('count')),
      timers: nullable({
        timers: [{ ...JS_FRAME, dueInMs: nullable('number'), afterMs: 'number', repeat: 'boolean' }],
        more: 'count', untracked: 'count'
      }),
      promises: nullable({
        pending: 'count', sites: 'boolean', named: 'boolean', untracked: 'count',
        groups: [{ ...JS_FRAME, count: 'count', oldestMs: 'number' }],
        moreGroups: 'count'
      })
    }]
  },
  memory: {
    process: {
      rssBytes: nullable('count'), peakRssBytes: nullable('count'), swapBytes: nullable('count'),
      anonymousBytes: nullable('count'), fileBackedBytes: nullable('count'),
      fds: nullable('count'), fdLimit: nullable('count'), fdHardLimit: nullable('count')
    },
    threads: [{
      tid: 'integer', threadId: nullable('integer'), workerName: nullable('string'), label: 'string',
      heap: nullable({
        source: oneOf('report', 'gc', 'earlier'), atMs: 'count', ageMs: 'count',
        usedBytes: 'count', totalBytes: 'count', limitBytes: 'count', oldGenerationLimitBytes: nullable('count'),
        oldGenerationBytes: 'count', percentOfLimit: 'number', nearLimit: 'boolean',
        externalBytes: 'count', arrayBuffersBytes: nullable('count'),
        spaces: [{ name: 'string', usedBytes: 'count', sizeBytes: 'count' }],
        gcCount: 'count', gcTotalMs: 'number',
        lastGc: nullable({ kind: oneOf('scavenge', 'minor-mark-sweep', 'mark-sweep-compact', 'other'), pauseMs: 'number', atMs: 'count' })
      })
    }],
    warnings: ['string']
  },
  loadedObjects: [{ path: 'string', base: 'hex', mapped: 'hex', buildId: nullable('string'), inStacks: 'boolean' }],
  processes: [PROCESS],
  configuration: { application: record('string'), runtime: record('string') },
  sections: [{ name: 'string', content: 'any', error: nullable('string') }],
  errors: ['string']
}

const ISO_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const PRIMITIVES = {
  any: () => true,
  string: v => typeof v === 'string',
  number: v => typeof v === 'number' && Number.isFinite(v),
  integer: v => Number.isInteger(v),
  count: v => Number.isInteger(v) && v >= 0,
  boolean: v => typeof v === 'boolean',
  hex: v => typeof v === 'string' && /^0x[0-9a-f]+$/.test(v),
  'iso-date': v => typeof v === 'string' && ISO_DATE.test(v) && !Number.isNaN(Date.parse(v))
}

function check (value, type, at, problems) {
  if (problems.length >= 20) return
  if (typeof type === 'string') {
    if (!PRIMITIVES[type](value)) problems.push(`${at}: expected ${type}, got ${show(value)}`)
  } else if (Array.isArray(type)) {
    if (!Array.isArray(value)) return void problems.push(`${at}: expected an array, got ${show(value)}`)
    value.forEach((v, i) => check(v, type[0], `${at}[${i}]`, problems))
  } else if ('nullable' in type) {
    if (value !== null) check(value, type.nullable, at, problems)
  } else if ('optional' in type) {
    if (value !== undefined) check(value, type.optional, at, problems)
  } else if ('oneOf' in type) {
    if (!type.oneOf.includes(value)) problems.push(`${at}: expected one of ${type.oneOf.map(show).join(', ')}, got ${show(value)}`)
  } else if ('record' in type) {
    if (!isObject(value)) return void problems.push(`${at}: expected an object, got ${show(value)}`)
    for (const [k, v] of Object.entries(value)) check(v, type.record, `${at}[${JSON.stringify(k)}]`, problems)
  } else {
    if (!isObject(value)) return void problems.push(`${at}: expected an object, got ${show(value)}`)
    for (const [k, t] of Object.entries(type)) {
      if (!(k in value) && !(isObject(t) && 'optional' in t)) problems.push(`${at}.${k}: missing`)
      else check(value[k], t, `${at}.${k}`, problems)
    }
    for (const k of Object.keys(value)) if (!(k in type)) problems.push(`${at}.${k}: not in the README's schema`)
  }
}

const isObject = v => v !== null && typeof v === 'object' && !Array.isArray(v)
const show = v => { const s = JSON.stringify(v); return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 60) + '…' : s }

/** What the schema alone cannot say: the relations between fields. */
function checkRelations (r, problems) {
  const main = r.threads.filter(th => th.kind === 'main')
  if (main.length > 1) problems.push(`threads: ${main.length} main threads`)
  if (main.length === 1 && main[0].tid !== r.package.pid) problems.push(`threads: the main thread's tid ${main[0].tid} is not the pid ${r.package.pid}`)
  const tids = new Set()
  for (const th of r.threads) {
    if (tids.has(th.tid)) problems.push(`threads: tid ${th.tid} listed twice`)
    tids.add(th.tid)
    if (th.javascriptSource !== null && !Array.isArray(th.javascript)) problems.push(`thread ${th.tid}: javascriptSource ${th.javascriptSource} without a JavaScript stack`)
    if (th.kind !== 'main' && th.kind !== 'worker' && th.javascript !== null) problems.push(`thread ${th.tid} (${th.kind}): a JavaScript stack on a thread that runs none`)
    if (th.asyncCallers !== null && th.javascriptSource !== 'interrupt') problems.push(`thread ${th.tid}: async callers without a JavaScript stack from its interrupt`)
  }
  const jsThreads = r.threads.filter(th => th.kind === 'main' || th.kind === 'worker').map(th => th.tid).sort((a, b) => a - b)
  const memoryTids = r.memory.threads.map(m => m.tid).sort((a, b) => a - b)
  if (jsThreads.join() !== memoryTids.join()) problems.push(`memory: threads ${memoryTids.join(', ')}, the JavaScript threads are ${jsThreads.join(', ')}`)
  for (const m of r.memory.threads) {
    if (!m.heap) continue
    if (m.heap.nearLimit !== (m.heap.percentOfLimit >= 85)) problems.push(`memory: ${m.label}: nearLimit ${m.heap.nearLimit} at ${m.heap.percentOfLimit}%`)
    if (m.heap.usedBytes > m.heap.totalBytes) problems.push(`memory: ${m.label}: ${m.heap.usedBytes} used of ${m.heap.totalBytes}`)
  }
  const near = r.memory.threads.filter(m => m.heap && m.heap.nearLimit).length
  if (near !== r.memory.warnings.length) problems.push(`memory: ${near} heaps near their limit, ${r.memory.warnings.length} warnings`)
  const modules = new Set(r.threads.flatMap(th => th.native.map(f => f.module)))
  for (const o of r.loadedObjects) {
    if (o.inStacks !== modules.has(o.path)) problems.push(`loadedObjects: ${o.path} inStacks ${o.inStacks}, but ${modules.has(o.path) ? 'a' : 'no'} frame is in it`)
    if (o.buildId !== null && !/^[0-9a-f]{2,}$/.test(o.buildId)) problems.push(`loadedObjects: ${o.path} build ID ${show(o.buildId)}`)
  }
  if (r.processes.length > 0 && r.processes[0].pid !== r.package.pid) problems.push(`processes[0].pid ${r.processes[0].pid} is not the pid ${r.package.pid}`)
  const names = r.sections.map(s => s.name)
  if (new Set(names).size !== names.length) problems.push(`sections: a name twice (${names.join(', ')})`)
  for (const s of r.sections) if (s.error !== null && s.content !== null) problems.push(`section ${s.name}: both content and error`)
}

// ---- the text view ----

const HEADING = /^={72}\n====\s+(.+?)\s+====\n={72}$/gm
const THREAD_HEADER = /^-{6}\s+Thread #(\d+)(?: (.*?))? \(([a-z0-9-]+)(?: (\d+)(?: "(.*)")?)?(?:, crashed)?\)\s+-{6}$/
const NATIVE_LINE = /^ {2}#(\d+)\s+(0x[0-9a-f]+)\s+(.*)$/
const FIXED_SECTIONS = ['Guru Meditation', 'Package', 'Threads', 'Green Threads', 'Memory', 'Loaded Objects', 'Processes', 'Configuration']

/** The fixed sections, with Samples after Threads in a sampled report. */
const fixedSections = titles => titles[3] === 'Samples' ? [...FIXED_SECTIONS.slice(0, 3), 'Samples', ...FIXED_SECTIONS.slice(3)] : FIXED_SECTIONS

/** The text view's sections and threads, as far as a test needs to compare them. */
function parseText (text) {
  const headings = [...text.matchAll(HEADING)].map(m => ({ title: m[1], start: m.index, bodyStart: m.index + m[0].length }))
  const body = i => text.slice(headings[i].bodyStart, i + 1 < headings.length ? headings[i + 1].start : text.length)
  const sections = headings.map((h, i) => ({ title: h.title, body: body(i) }))
  const threadsSection = sections.find(s => s.title === 'Threads')
  const threads = []
  let summary = null
  if (threadsSection) {
    const lines = threadsSection.body.split('\n')
    summary = lines.find(l => l.trim() !== '') || null
    let th = null
    let part = null
    for (const line of lines) {
      const header = THREAD_HEADER.exec(line)
      if (header) {
        th = { tid: Number(header[1]), name: header[2] ?? '', kind: header[3], javascript: null, javascriptSource: null, asyncCallers: [], native: [], lines: [] }
        threads.push(th)
        part = null
        continue
      }
      if (!th) continue
      th.lines.push(line)
      if (line === 'JavaScript stack:' || line === 'JavaScript stack (from the code map: function start lines):') {
        part = 'js'
        th.javascript = []
        th.javascriptSource = line === 'JavaScript stack:' ? 'interrupt' : 'code-map'
      } else if (line === 'Native stack:') {
        part = 'native'
      } else if (part === 'js' && line.startsWith('  at async ')) {
        th.asyncCallers.push(line.slice(11))
      } else if (part === 'js' && line.startsWith('  at ')) {
        th.javascript.push(line.slice(5))
      } else if (part === 'native') {
        const m = NATIVE_LINE.exec(line)
        if (m) th.native.push({ index: Number(m[1]), address: m[2], rest: m[3] })
      }
    }
  }
  return { sections, summary, threads }
}

// A report the native fallback wrote (native/reporter/fallback_report.cc)
// says so at its top and has the sections the capture alone gives.
const FALLBACK_MARK = 'written by the native fallback because: '
const FALLBACK_SECTIONS = ['Guru Meditation', 'Package', 'Threads']

function checkText (text, problems) {
  const parsed = parseText(text)
  const titles = parsed.sections.map(s => s.title)
  const fallback = parsed.sections[0] && parsed.sections[0].body.includes(FALLBACK_MARK)
  const expected = fallback ? FALLBACK_SECTIONS : fixedSections(titles)
  const fixed = titles.slice(0, expected.length)
  if (fixed.join('|') !== expected.join('|')) problems.push(`text: sections ${fixed.join(', ')}; expected ${expected.join(', ')} first`)
  if (fallback && titles.length !== expected.length + 1) problems.push(`text: the fallback's sections are ${titles.join(', ')}`)
  if (titles[titles.length - 1] !== 'End of Guru Meditation Report') problems.push('text: no "End of Guru Meditation Report" heading at the end')
  const count = /^(\d+) threads?[,( ]/.exec(parsed.summary || '')
  if (!count) problems.push(`text: the Threads section does not open with the thread count (${show(parsed.summary)})`)
  else if (Number(count[1]) !== parsed.threads.length) problems.push(`text: says ${count[1]} threads, lists ${parsed.threads.length}`)
  for (const th of parsed.threads) {
    if (!THREAD_KINDS.includes(th.kind)) problems.push(`text: thread #${th.tid}: kind ${th.kind}`)
    if (!th.lines.some(l => l.startsWith('state = '))) problems.push(`text: thread #${th.tid}: no state`)
    if (!th.lines.includes('Native stack:')) problems.push(`text: thread #${th.tid}: no native stack`)
    th.native.forEach((f, i) => { if (f.index !== i) problems.push(`text: thread #${th.tid}: native frame #${f.index} at position ${i}`) })
  }
  return parsed
}

/** The text view's line for a JavaScript frame, as src/format/text.ts writes it. */
function jsFrameText (f) {
  let where = f.file || '<unknown>'
  if (f.line > 0) where += `:${f.line}${f.column > 0 ? `:${f.column}` : ''}`
  return `${f.function || '<anonymous>'} (${where})`
}

function compareViews (json, parsed, problems) {
  const a = json.threads.map(th => `${th.tid} ${th.kind}`)
  const b = parsed.threads.map(th => `${th.tid} ${th.kind}`)
  if (a.join('|') !== b.join('|')) return void problems.push(`text and JSON name different threads: JSON [${a.join(', ')}], text [${b.join(', ')}]`)
  json.threads.forEach((th, i) => {
    const tx = parsed.threads[i]
    const js = Array.isArray(th.javascript) ? th.javascript.map(jsFrameText) : null
    if (JSON.stringify(js) !== JSON.stringify(tx.javascript)) problems.push(`thread ${th.tid}: JavaScript frames differ: JSON ${show(js)}, text ${show(tx.javascript)}`)
    const callers = (th.asyncCallers ?? []).map(jsFrameText)
    if (JSON.stringify(callers) !== JSON.stringify(tx.asyncCallers)) problems.push(`thread ${th.tid}: async callers differ: JSON ${show(callers)}, text ${show(tx.asyncCallers)}`)
    else if (js && th.javascriptSource !== tx.javascriptSource && th.javascriptSource !== null) problems.push(`thread ${th.tid}: javascriptSource ${th.javascriptSource}, text says ${tx.javascriptSource}`)
    const addresses = th.native.map(f => f.address)
    const textAddresses = tx.native.map(f => f.address)
    if (addresses.join() !== textAddresses.join()) problems.push(`thread ${th.tid}: native frames differ: JSON ${addresses.length}, text ${textAddresses.length} (${show(addresses.slice(0, 3))} / ${show(textAddresses.slice(0, 3))})`)
    th.native.forEach((f, k) => {
      const line = tx.native[k]
      if (!line) return
      if (f.location && !line.rest.startsWith(f.location) && !(f.javascript && !f.symbol && !f.module)) problems.push(`thread ${th.tid} frame #${k}: text ${show(line.rest)} lacks ${show(f.location)}`)
      if (f.javascript && !line.rest.includes(`JS: ${f.javascript.function || '<anonymous>'} (`)) problems.push(`thread ${th.tid} frame #${k}: text ${show(line.rest)} does not name ${f.javascript.function}`)
    })
  })
  const memory = parsed.sections.find(s => s.title === 'Memory')
  if (memory) {
    const headings = [...memory.body.matchAll(/^-{6}\s+(.+?) \(tid (\d+)\)\s+-{6}$/gm)].map(m => `${m[1]} ${m[2]}`)
    const expected = json.memory.threads.map(m => `${m.label} ${m.tid}`)
    if (headings.join('|') !== expected.join('|')) problems.push(`memory: text lists [${headings.join(', ')}], JSON [${expected.join(', ')}]`)
    const warnings = memory.body.split('\n').filter(l => l.startsWith('WARNING: ')).map(l => l.slice(9))
    if (warnings.join('|') !== json.memory.warnings.join('|')) problems.push(`memory: text warnings ${show(warnings)}, JSON ${show(json.memory.warnings)}`)
    const fds = /^file descriptors = (\d+|\(unknown\)) open/m.exec(memory.body)
    if (!fds || fds[1] !== (json.memory.process.fds === null ? '(unknown)' : String(json.memory.process.fds))) problems.push(`memory: text ${show(fds && fds[0])}, JSON fds ${json.memory.process.fds}`)
  }
  const objects = parsed.sections.find(s => s.title === 'Loaded Objects')
  if (objects) {
    const listed = objects.body.split('\n').filter(l => / {2}base 0x[0-9a-f]+ {2}build-id /.test(l)).map(l => l.slice(0, l.indexOf('  base ')))
    const expected = json.loadedObjects.filter(o => o.inStacks).map(o => o.path)
    if (listed.join('|') !== expected.join('|')) problems.push(`loaded objects: text lists [${listed.join(', ')}], JSON's in stacks [${expected.join(', ')}]`)
  }
  const titles = parsed.sections.map(s => s.title)
  if ((json.samples !== null) !== titles.includes('Samples')) problems.push(`samples: JSON ${json.samples === null ? 'has none' : 'has them'}, the text view ${titles.includes('Samples') ? 'has' : 'has no'} Samples section`)
  if (json.samples) {
    const body = parsed.sections.find(s => s.title === 'Samples')?.body ?? ''
    const stuck = body.split('\n').filter(l => l.includes('[STUCK')).length
    if (stuck !== json.samples.threads.filter(t => t.stuck).length) problems.push(`samples: text marks ${stuck} stuck, JSON ${json.samples.threads.filter(t => t.stuck).length}`)
    for (const t of json.samples.threads) if (t.places.reduce((n, p) => n + p.count, 0) !== t.seen) problems.push(`samples: ${t.label}: places count ${t.places.reduce((n, p) => n + p.count, 0)}, seen ${t.seen}`)
  }
  const sectionTitles = titles.slice(fixedSections(titles).length, -1)
  const names = json.sections.map(s => s.name)
  // The report's errors come last, in a section of their own.
  if (json.errors.length > 0) names.push('Errors')
  if (sectionTitles.join('|') !== names.join('|')) problems.push(`user sections differ: JSON [${names.join(', ')}], text [${sectionTitles.join(', ')}]`)
}

function fail (problems, what) {
  if (problems.length === 0) return
  throw new Error(`invalid report${what ? ` (${what})` : ''}:\n  ${problems.slice(0, 20).join('\n  ')}`)
}

/**
 * Validates a report. `json`: the JSON view (a string or the parsed object),
 * or null; `text`: the text view, or null. Both given: they must be views of
 * the same report. Returns { json, text } parsed; throws on any mismatch.
 */
function validateReport (json, text = null, what = '') {
  const problems = []
  let report = null
  if (json !== null && json !== undefined) {
    try {
      report = typeof json === 'string' ? JSON.parse(json) : json
    } catch (err) {
      fail([`not JSON: ${err.message}`], what)
    }
    check(report, SCHEMA, 'report', problems)
    if (problems.length === 0) checkRelations(report, problems)
  }
  let parsed = null
  if (text !== null && text !== undefined) {
    parsed = checkText(text, problems)
    if (report && problems.length === 0) compareViews(report, parsed, problems)
  }
  fail(problems, what)
  return { json: report, text: parsed }
}

/** A report's content, either view: JSON when it starts with `{`. */
function validateReportContent (content, what = '') {
  return content.trimStart().startsWith('{') ? validateReport(content, null, what).json : validateReport(null, content, what).text
}

/**
 * A report written on a fatal signal (native/fatal/): its own text, native
 * stacks only. Its heading and fields, and, when the helper thread wrote
 * them, the Threads: as many as it says, the crashed one first, each with
 * its state and numbered frames. Throws on any mismatch.
 */
function validateFatalReport (text, what = '') {
  const problems = []
  const parsed = parseText(text)
  const titles = parsed.sections.map(s => s.title)
  if (titles[0] !== 'Guru Meditation: fatal signal') problems.push(`fatal: first heading ${show(titles[0])}`)
  const head = parsed.sections[0] ? parsed.sections[0].body : ''
  for (const field of ['signal', 'si_code', 'crashed thread', 'pid', 'service name', 'node', 'generated at']) {
    if (!new RegExp(`^${field} = \\S`, 'm').test(head)) problems.push(`fatal: no ${field} line`)
  }
  if (titles.includes('Threads')) {
    const count = /^(\d+) threads? \(native stacks only: written after a fatal signal\)$/.exec(parsed.summary || '')
    if (!count) problems.push(`fatal: the Threads section opens with ${show(parsed.summary)}`)
    else if (Number(count[1]) !== parsed.threads.length) problems.push(`fatal: says ${count[1]} threads, lists ${parsed.threads.length}`)
    const headers = text.split('\n').filter(l => /^-{6}\s+Thread #/.test(l))
    const crashed = headers.filter(l => l.includes(', crashed)'))
    if (crashed.length !== 1 || headers[0] !== crashed[0]) problems.push(`fatal: ${crashed.length} crashed thread(s), the first listed is ${show(headers[0])}`)
    for (const th of parsed.threads) {
      if (!th.lines.some(l => l.startsWith('state = '))) problems.push(`fatal: thread #${th.tid}: no state`)
      if (!th.lines.includes('Native stack:')) problems.push(`fatal: thread #${th.tid}: no native stack`)
      th.native.forEach((f, i) => { if (f.index !== i) problems.push(`fatal: thread #${th.tid}: frame #${f.index} at position ${i}`) })
    }
  }
  fail(problems, what)
  return parsed
}

module.exports = { validateReport, validateReportContent, validateFatalReport, parseText, SCHEMA }
