'use strict'
// Fuzzing, seeded and bounded in time (GMR_FUZZ_MS, default 10 s in all;
// GMR_FUZZ_SEED replays a run): hostile configurations (test/fuzz/structures.js)
// through flattenConfig and the text and JSON views of a report built with
// them, hostile section values through the user sections, and hostile
// options through resolveOptions. Asserted: nothing throws, the output
// stays within its bounds, and no planted secret appears anywhere.
const t = require('tap')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Generator, prng } = require('../fuzz/structures')
const { flattenConfig } = require('../../dist/sections/configuration')
const { buildReport, render } = require('../../dist/report')
const { staticPackage } = require('../../dist/sections/package')
const { registerSection, runSectionsSync, runSections } = require('../../dist/sections/user')
const { resolveOptions } = require('../../dist/options')
const { safeJsonStringify } = require('../../dist/util/json-safe')

const TOTAL_MS = Number(process.env.GMR_FUZZ_MS || 10000)
const SEED = Number(process.env.GMR_FUZZ_SEED || Date.now() % 1e9)
t.comment(`seed ${SEED} (GMR_FUZZ_SEED=${SEED} replays it), ${TOTAL_MS} ms`)

// The bounds documented in src/sections/configuration.ts.
const MAX_ENTRIES = 2000
const MAX_VALUE = 2000 + 40 // and the `… (N more chars)` note
const MAX_KEY = 12 * (200 + 40) + 40 // 12 levels of at most 200 characters each, and separators
const MAX_TOTAL = 256 * 1024 + MAX_KEY + MAX_VALUE + 200 // the cap, the entry that crossed it, the summary line
const MAX_SECTION = 256 * 1024 + 100

// A capture with no threads: the report's other parts are real.
const capture = () => ({ startedUnixMs: Date.now(), signalPhaseUs: 1, jsPhaseUs: 1, totalUs: 2, captureSignal: null, trigger: { kind: 'api', detail: '', coalesced: 0 }, threads: [] })

function leaks (text, secrets) {
  return secrets.filter(s => text.includes(s))
}

// For ms, and at least `min` runs however slow the machine is: what is
// checked does not depend on timing.
function runFor (ms, body, min = 10) {
  const deadline = Date.now() + ms
  let i = 0
  while (Date.now() < deadline || i < min) body(i++)
  return i
}

t.test('flattenConfig and the report views: no throw, bounded, no secret', async t => {
  const pkg = staticPackage('1.0', 'fuzz')
  let failures = 0
  const runs = runFor(TOTAL_MS * 0.6, (i) => {
    const seed = SEED + i
    const g = new Generator(seed)
    const conf = g.conf()
    const extra = g.r.chance(0.3) ? ['customfield', /^x_.*_y$/g] : []
    let flat
    try {
      flat = flattenConfig(conf, extra)
    } catch (err) {
      failures++
      return t.fail(`seed ${seed}: flattenConfig threw ${err && err.stack}`)
    }
    const entries = Object.entries(flat)
    const total = entries.reduce((n, [k, v]) => n + k.length + v.length, 0)
    const problems = []
    if (entries.length > MAX_ENTRIES + 1) problems.push(`${entries.length} entries`)
    if (total > MAX_TOTAL) problems.push(`${total} characters in all`)
    for (const [k, v] of entries) {
      if (typeof v !== 'string') problems.push(`${k} is a ${typeof v}`)
      else if (v.length > MAX_VALUE) problems.push(`${k.slice(0, 80)}: a value of ${v.length} characters`)
      if (k.length > MAX_KEY) problems.push(`a key of ${k.length} characters`)
    }
    const report = buildReport(capture(), pkg, { configuration: { application: flat, runtime: {} }, sections: [], errors: [], writtenBy: 'caller' })
    let text, json
    try {
      text = render(report, 'text')
      json = render(report, 'json')
      JSON.parse(json)
    } catch (err) {
      problems.push(`rendering threw ${err && err.message}`)
    }
    const leaked = [...leaks(text || '', g.secrets), ...leaks(json || '', g.secrets)]
    if (leaked.length) problems.push(`leaked ${leaked.join(', ')}`)
    if (problems.length) {
      failures++
      t.fail(`seed ${seed}: ${problems.slice(0, 5).join('; ')}`)
    }
  })
  t.equal(failures, 0, `${runs} configurations, none failed`)
})

t.test('user sections: hostile values are bounded and said inline, others intact', async t => {
  let current = null
  registerSection('Before', () => ({ fine: true }))
  registerSection('Fuzzed', () => current)
  registerSection('After', () => 'still here')
  let failures = 0
  const runs = runFor(TOTAL_MS * 0.2, (i) => {
    const seed = SEED + 1e6 + i
    current = new Generator(seed).value(0)
    let sections
    try {
      sections = runSectionsSync('async')
    } catch (err) {
      failures++
      return t.fail(`seed ${seed}: runSectionsSync threw ${err && err.stack}`)
    }
    const fuzzed = sections.find(s => s.name === 'Fuzzed')
    const size = JSON.stringify(fuzzed).length
    const others = sections.filter(s => s.name !== 'Fuzzed').map(s => JSON.stringify(s.content))
    if (size > MAX_SECTION || others.join() !== '{"fine":true},"still here"') {
      failures++
      t.fail(`seed ${seed}: section of ${size} characters, others ${others.join()}`)
    }
  })
  t.equal(failures, 0, `${runs} section values, none failed`)

  // The same through the asynchronous path, with values that are promises,
  // thenables and throwers.
  const g = new Generator(SEED)
  // Each with what its section says, waited for (timeout 100 ms) and
  // synchronously (from an interrupt, where a promise cannot be waited for).
  const specials = [
    [() => Promise.reject(new Error('rejected')), 'the generator threw: rejected', 'async'],
    [() => { throw Object.create(null) }, 'the generator threw: [object Object]', 'the generator threw: [object Object]'],
    [() => { const e = new Error('x'); Object.defineProperty(e, 'message', { get () { throw new Error('no') } }); throw e }, 'the generator threw: [object Error]', 'the generator threw: [object Error]'],
    [() => { throw { toString () { throw new Error('toString') } } }, 'the generator threw: [object Object]', 'the generator threw: [object Object]'], // eslint-disable-line no-throw-literal
    [() => ({ then () { throw new Error('then threw') } }), 'the generator threw: then threw', 'async'],
    [() => ({ get then () { throw new Error('then getter') } }), 'the generator threw: then getter', 'the generator threw: then getter'],
    [() => new Promise(() => {}), 'timed out after 100 ms', 'async'],
    [() => new Promise(resolve => setTimeout(resolve, 300, 'late')), 'timed out after 100 ms', 'async'],
    [() => ({ plain: [1, 'two', null] }), null, null]
  ]
  for (const [n, [make, error, syncError]] of specials.entries()) {
    current = undefined
    registerSection('Fuzzed', make)
    // The section timer does not hold the loop open (nor does a report
    // keep a process alive): here, this one does.
    const alive = setTimeout(() => {}, 5000)
    const sections = await runSections(100)
    clearTimeout(alive)
    t.same(sections.map(s => s.name), ['Before', 'Fuzzed', 'After'], `special ${n}: every section there`)
    const f = sections.find(s => s.name === 'Fuzzed')
    t.same({ error: f.error, content: f.content }, { error, content: error === null ? { plain: [1, 'two', null] } : null }, `special ${n}: ${error ?? 'its content'}`)
    t.same(sections.find(s => s.name === 'After').content, 'still here')
    const sync = runSectionsSync('async')
    t.same(sync.map(s => s.name), ['Before', 'Fuzzed', 'After'], `special ${n}, synchronously: every section there`)
    t.equal(sync.find(s => s.name === 'Fuzzed').error, syncError, `special ${n}, synchronously: ${syncError ?? 'its content'}`)
  }
  // A generated value too: shown, bounded; or, when reading it throws (a
  // Proxy's trap, a throwing \`then\` getter), said so, with no content.
  registerSection('Fuzzed', () => new Generator(SEED).value(0))
  const random = (await runSections(100)).find(s => s.name === 'Fuzzed')
  if (random.error === null) t.ok(JSON.stringify(random.content ?? null).length <= MAX_SECTION, 'a generated value is shown, bounded')
  else t.same({ threw: random.error.startsWith('the generator threw: '), content: random.content }, { threw: true, content: null }, `a generated value that throws: ${random.error}`)
})

t.test('safeJsonStringify: no throw, bounded', async t => {
  let failures = 0
  const runs = runFor(TOTAL_MS * 0.1, (i) => {
    const seed = SEED + 2e6 + i
    const v = new Generator(seed).value(0)
    let out
    try { out = safeJsonStringify(v, 0); JSON.parse(out) } catch (err) { failures++; return t.fail(`seed ${seed}: ${err && err.message}`) }
    // 100,000 values of at most 256 KiB each would be far more: in practice
    // the generator's values stay small, so this checks it is finite.
    if (out.length > 64 * 1024 * 1024) { failures++; t.fail(`seed ${seed}: ${out.length} characters`) }
  })
  t.equal(failures, 0, `${runs} values`)
  const wide = Array.from({ length: 300000 }, (_, i) => i)
  const out = JSON.parse(safeJsonStringify(wide, 0))
  t.equal(out.length, 100000, 'the array and 99,999 of its items make 100,000 values; then the note')
  t.equal(out[out.length - 1], '[… not listed: limit of 100000 values]')
  t.ok(JSON.parse(safeJsonStringify({ s: 'x'.repeat(1e6) })).s.endsWith('… (737856 more characters)'))
})

t.test('resolveOptions: an OptionError or a result, nothing else', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-fuzz-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'file'), '')
  const KEYS = ['serviceName', 'logDir', 'fileEventHandler', 'fileEventHandlerInterval', 'signal', 'format', 'conf',
    'secretKeys', 'sectionTimeout', 'codeMap', 'stallThreshold', 'bogus']
  const ENV = ['GMR_SERVICE_NAME', 'GMR_LOG_DIR', 'GMR_FILE_TRIGGER', 'GMR_FILE_TRIGGER_INTERVAL', 'GMR_SIGNAL', 'GMR_FORMAT',
    'GMR_SECTION_TIMEOUT', 'GMR_CODE_MAP', 'GMR_STALL_THRESHOLD']
  const STRINGS = ['', ' ', 'SIGUSR1', 'usr2', 'SIGKILL', 'IOT', '9', '12', 'none', 'false', '0', '1', 'true', 'off', 'json', 'text',
    '100', '-1', '1e3', '0x10', 'NaN', 'Infinity', dir, path.join(dir, 'file'), path.join(dir, 'new'), 'relative/dir', '/proc/self',
    '/dev/null', '\0', 'a/b', 'x'.repeat(300)]
  let failures = 0
  let accepted = 0
  const runs = runFor(TOTAL_MS * 0.1, (i) => {
    const seed = SEED + 3e6 + i
    const r = prng(seed)
    const g = new Generator(seed)
    const anything = () => r.chance(0.5) ? r.pick(STRINGS) : (r.chance(0.5) ? g.leaf() : g.value(3))
    const options = {}
    for (let k = r.int(4); k > 0; k--) options[r.pick(KEYS)] = anything()
    const env = {}
    for (let k = r.int(3); k > 0; k--) env[r.pick(ENV)] = r.pick(STRINGS)
    const given = r.chance(0.1) ? g.hostile(0) : options
    try {
      resolveOptions(given, env)
      accepted++
    } catch (err) {
      if (!err || err.name !== 'GuruMeditationOptionError' || typeof err.option !== 'string' || !err.message.includes(err.option)) {
        failures++
        t.fail(`seed ${seed}: ${err && err.stack}`)
      }
    }
  })
  t.equal(failures, 0, `${runs} option sets (${accepted} accepted), only OptionErrors`)
})
