'use strict'
// Text and JSON views of a report, and the process tree they show.
const t = require('tap')
const { spawn } = require('node:child_process')
const { renderText } = require('../dist/format/text')
const { renderJson } = require('../dist/format/json')
const { safeJsonStringify } = require('../dist/util/json-safe')
const { flattenConfig, runtimeConfig } = require('../dist/sections/configuration')
const { processTree } = require('../dist/sections/processes')

const RULE = '='.repeat(72)

// Each of these must appear nowhere in either view.
const SECRETS = ['pgS3cretPw', 'bearerTokenValue', 'AKIAIOSFODNN7EXAMPLE', 'pemSecretLine',
  'nestedDbPassw0rd', 'dXNlcjpodW50ZXIy', 'customInternalValue', 'regexMatchedValue']

function conf () {
  return {
    database: { connection: 'postgresql://nova:pgS3cretPw@db.example.com:5432/nova' },
    db: { credentials: { password: 'nestedDbPassw0rd' } },
    http: { headers: { Authorization: 'Basic dXNlcjpodW50ZXIy' } },
    upstream: { note: 'send Bearer abc.bearerTokenValue' },
    aws: { access: 'AKIAIOSFODNN7EXAMPLE' },
    tls: { key_file: '/etc/nova/key.pem', bundle: '-----BEGIN PRIVATE KEY-----\npemSecretLine\n-----END PRIVATE KEY-----' },
    internal: { myCustomField: 'customInternalValue', x_hidden_y: 'regexMatchedValue' },
    hosts: ['a.example.com', 'b.example.com'],
    workers: 4
  }
}

function fixture (overrides = {}) {
  const cyclic = { size: 3n, fn () {} }
  cyclic.self = cyclic
  return {
    schema: 2,
    package: {
      serviceName: 'nova-api',
      product: 'OpenStack Nova',
      vendor: 'OpenStack Foundation',
      version: '13.0.0',
      application: { name: 'nova', version: '13.0.0' },
      node: 'v20.11.0',
      v8: '11.3.244.8',
      uv: '1.46.0',
      platform: 'linux',
      arch: 'x64',
      pid: 4242,
      ppid: 1,
      hostname: 'compute-1',
      cwd: '/srv/nova',
      argv: ['/usr/bin/node', '/srv/nova/api.js'],
      execArgv: ['--enable-source-maps'],
      uptimeSeconds: 12.5,
      generatedAt: '2024-05-06T07:08:09.000Z',
      trigger: { kind: 'signal', detail: 'SIGUSR2', coalesced: 2 }
    },
    threads: [
      {
        tid: 4242,
        name: 'node',
        kind: 'main',
        state: 'running',
        cpu: { userMs: 120, systemMs: 30 },
        vmState: 'JS',
        javascript: [
          { function: 'spin', file: '/srv/nova/api.js', line: 10, column: 5 },
          { function: '', file: 'node:internal/timers', line: 569, column: 17 }
        ],
        native: [
          { address: '0x00007f3a1c2b3c4d', symbol: 'epoll_wait', module: '/lib/x86_64-linux-gnu/libc.so.6', location: 'epoll_wait+0x1c' },
          { address: '0x000055d0a0b0c0d0', symbol: '', module: '/usr/bin/node', location: 'node+0x1234' }
        ],
        note: ''
      },
      {
        tid: 4250,
        name: 'libuv-worker',
        kind: 'libuv-threadpool',
        state: 'sleeping',
        cpu: { userMs: 0, systemMs: 1 },
        vmState: null,
        javascript: null,
        native: [],
        note: 'did not answer the capture signal'
      },
      {
        tid: 42513,
        name: '',
        kind: 'other',
        state: 'sleeping',
        cpu: { userMs: 0, systemMs: 0 },
        vmState: null,
        javascript: null,
        native: [],
        note: ''
      }
    ],
    capture: { signalPhaseUs: 1200, jsPhaseUs: 2100, totalUs: 3456, captureSignal: 'SIGRTMIN+3' },
    greenThreads: {
      summary: '2 event loops: 2 tcp, 1 timer; 3 keep the process alive; 1 request in flight',
      threads: [{
        tid: 4242,
        threadId: 0,
        workerName: null,
        label: 'main thread',
        loop: 'has not turned for 5.2 s',
        activeHandles: 4,
        activeRequests: 1,
        handles: [
          { type: 'tcp', description: 'tcp server listening on 127.0.0.1:8080', active: true, referenced: true, closing: false, node: false, machinery: false, fd: 19, local: '127.0.0.1:8080' },
          { type: 'timer', description: 'JavaScript timers: the next overdue by 4.9 s', active: true, referenced: true, closing: false, node: true, machinery: false, fd: null, dueInMs: -4900, repeatMs: 0 },
          { type: 'check', description: "check (Node's own)", active: true, referenced: false, closing: false, node: true, machinery: true, fd: null },
          { type: 'async', description: 'async wakeup', active: true, referenced: false, closing: false, node: false, machinery: true, fd: null },
          { type: 'signal', description: 'signal handler for SIGINT', active: true, referenced: false, closing: false, node: false, machinery: false, fd: null, signal: 'SIGINT' },
          { type: 'pipe', description: 'pipe fd 22', active: false, referenced: true, closing: true, node: false, machinery: false, fd: 22 }
        ],
        more: 3,
        problem: null,
        resources: { TCPServerWrap: 1, FSReqCallback: 2 },
        timers: {
          timers: [
            { function: 'refreshCache', file: '/srv/nova/cache.js', line: 12, column: 3, dueInMs: -4900, afterMs: 1000, repeat: true },
            { function: '', file: '/srv/nova/api.js', line: 40, column: 1, dueInMs: null, afterMs: 300, repeat: false }
          ],
          more: 1,
          untracked: 0
        },
        promises: {
          pending: 30,
          sites: true,
          named: true,
          untracked: 5,
          groups: [
            { function: 'awaitApproval', file: '/srv/nova/orders.js', line: 88, column: 1, count: 28, oldestMs: 303000 },
            { function: '', file: '', line: 0, column: 0, count: 2, oldestMs: 12 }
          ],
          moreGroups: 0
        }
      }, {
        tid: 4250,
        threadId: 1,
        workerName: 'resizer',
        label: 'worker 1 "resizer"',
        loop: 'waiting for events',
        activeHandles: 1,
        activeRequests: 0,
        handles: [],
        more: 0,
        problem: 'the handle list changed while it was read'
      }]
    },
    memory: {
      process: { rssBytes: 104857600, peakRssBytes: 157286400, swapBytes: 0, anonymousBytes: 73400320, fileBackedBytes: 31457280, fds: 23, fdLimit: 1024, fdHardLimit: 4096 },
      threads: [{
        tid: 4242,
        threadId: 0,
        workerName: null,
        label: 'main thread',
        heap: {
          source: 'gc',
          atMs: 1480000000000,
          ageMs: 5200,
          usedBytes: 99614720,
          totalBytes: 115343360,
          limitBytes: 155189248,
          oldGenerationLimitBytes: 104857600,
          oldGenerationBytes: 98566144,
          percentOfLimit: 94,
          nearLimit: true,
          externalBytes: 2097152,
          arrayBuffersBytes: 1048576,
          spaces: [{ name: 'new_space', usedBytes: 1048576, sizeBytes: 16777216 }, { name: 'old_space', usedBytes: 98566144, sizeBytes: 98566144 }],
          gcCount: 42,
          gcTotalMs: 123.456,
          lastGc: { kind: 'mark-sweep-compact', pauseMs: 31.5, atMs: 1480000000000 }
        }
      }],
      warnings: ['main thread (tid 4242): its old generation is 94.0 MiB, 94% of its 100.0 MiB limit: near the limit, where V8 ends it with "JavaScript heap out of memory"']
    },
    processes: [{
      pid: 4242,
      ppid: 1,
      command: 'node /srv/nova/api.js',
      state: 'running',
      user: 'nova',
      uids: { real: 1000, effective: 1000, saved: 1000 },
      gids: { real: 1000, effective: 1000, saved: 1000 },
      children: [{
        pid: 4300,
        ppid: 4242,
        command: 'sh -c worker',
        state: 'sleeping',
        user: 'nova',
        uids: { real: 1000, effective: 1000, saved: 1000 },
        gids: { real: 1000, effective: 1000, saved: 1000 },
        children: [{
          pid: 4301,
          ppid: 4300,
          command: 'worker',
          state: 'sleeping',
          user: 'nova',
          uids: { real: 1000, effective: 1000, saved: 1000 },
          gids: { real: 1000, effective: 1000, saved: 1000 },
          children: []
        }]
      }]
    }],
    configuration: {
      application: flattenConfig(conf(), ['customfield', /^x_.*_y$/]),
      runtime: { 'env.NODE_ENV': 'production', execPath: '/usr/bin/node' }
    },
    sections: [
      { name: 'Cache', content: 'hits = 10\nmisses = 2', error: null },
      { name: 'Pool', content: cyclic, error: null },
      { name: 'Stuck', content: null, error: 'timed out after 2000 ms' }
    ],
    errors: ['threads: thread 4252 did not answer'],
    ...overrides
  }
}

/** Lines from a box titled `title` up to the next box. */
function sectionBody (lines, title) {
  const start = lines.findIndex((l, i) => l.startsWith('====') && l.includes(` ${title} `) && lines[i - 1] === RULE)
  if (start < 0) return null
  const end = lines.findIndex((l, i) => i > start + 1 && l === RULE)
  return lines.slice(start + 2, end < 0 ? lines.length : end)
}

t.test('text: the oslo header box and section boxes', async (t) => {
  const text = renderText(fixture())
  const lines = text.split('\n')
  t.same(lines.slice(0, 4), [
    '========================================================================',
    '====                        Guru Meditation                         ====',
    '========================================================================',
    '||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||'
  ])
  for (const line of lines.slice(0, 4)) t.equal(line.length, 72)
  t.ok(text.endsWith('\n'))

  const titles = lines.filter((l, i) => lines[i - 1] === RULE && l.startsWith('====')).map((l) => l.slice(4, -4).trim())
  t.same(titles, ['Guru Meditation', 'Package', 'Threads', 'Green Threads', 'Memory', 'Loaded Objects', 'Processes', 'Configuration',
    'Cache', 'Pool', 'Stuck', 'Errors', 'End of Guru Meditation Report'])
  for (const line of lines.filter((l) => l.startsWith('===='))) t.equal(line.length, 72, line)
  t.ok(lines.includes('====                            Package                             ===='))
  t.ok(lines.includes('====                         Configuration                          ===='))
})

t.test('text: Package', async (t) => {
  const body = sectionBody(renderText(fixture()).split('\n'), 'Package')
  t.same(body.slice(0, 3), ['product = OpenStack Nova', 'vendor = OpenStack Foundation', 'version = 13.0.0'])
  const text = body.join('\n')
  t.match(text, /^service name = nova-api$/m)
  t.match(text, /^application = nova 13\.0\.0$/m)
  t.match(text, /^argv = \n {2}\/usr\/bin\/node\n {2}\/srv\/nova\/api\.js\nexecArgv = \n {2}--enable-source-maps\n/m, 'lists: items two spaces in')
  t.match(text, /^uptime = 12\.5 s$/m)
  t.match(text, /^generated at = 2024-05-06T07:08:09\.000Z$/m)
  t.match(text, /^trigger = signal SIGUSR2 \(2 more coalesced\)$/m)

  const api = fixture()
  api.package.trigger = { kind: 'api', detail: '', coalesced: 0 }
  t.match(renderText(api), /^trigger = api$/m)
})

t.test('text: Threads', async (t) => {
  const lines = sectionBody(renderText(fixture()).split('\n'), 'Threads')
  t.equal(lines[0], '3 threads, capture took 3.46 ms (signal phase 1.20 ms, JavaScript stacks 2.10 ms, capture signal SIGRTMIN+3)')
  const heading = '------                  Thread #4242 node (main)                  ------'
  const at = lines.indexOf(heading)
  t.ok(at > 0, 'sub-heading centred in 72 columns')
  t.same(lines.slice(at + 1, at + 9), [
    'state = running',
    'cpu = user 120 ms, system 30 ms',
    'vm state = JS',
    'JavaScript stack:',
    '  at spin (/srv/nova/api.js:10:5)',
    '  at <anonymous> (node:internal/timers:569:17)',
    'Native stack:',
    '  #0  0x00007f3a1c2b3c4d  epoll_wait+0x1c  (libc.so.6)'
  ])
  t.equal(lines[at + 9], '  #1  0x000055d0a0b0c0d0  node+0x1234  (node)')

  const worker = '------        Thread #4250 libuv-worker (libuv-threadpool)        ------'
  const w = lines.indexOf(worker)
  t.ok(w > 0)
  t.same(lines.slice(w + 1, w + 6), [
    'state = sleeping',
    'cpu = user 0 ms, system 1 ms',
    'note = did not answer the capture signal',
    'Native stack:',
    '  (did not answer the capture signal)'
  ], 'no JS block and no vm state when null')
  // Odd padding goes right, as Python's '{: ^60}' does (19 spaces, 20 spaces).
  const other = lines.indexOf('------                   Thread #42513 (other)                    ------')
  t.ok(other > 0, 'an unnamed thread, centred like oslo')
  t.equal(lines[other + 4], '  (not captured)')
  // Every sub-heading the renderer wrote: 72 wide, its title centred (the
  // odd space on the right).
  const subHeadings = lines.filter((l) => l.startsWith('------'))
  t.equal(subHeadings.length, 3, 'one per thread')
  for (const l of subHeadings) {
    const inner = l.slice(6, -6)
    const left = inner.length - inner.trimStart().length
    const right = inner.length - inner.trimEnd().length
    t.same({ width: l.length, ends: l.endsWith('------'), centred: right - left === 0 || right - left === 1 }, { width: 72, ends: true, centred: true }, l)
  }
})

t.test("text: the report's deadlocks on top of Threads, named", async (t) => {
  const r = fixture()
  r.deadlocks = [[4242, 4250]]
  const lines = sectionBody(renderText(r).split('\n'), 'Threads')
  t.same(lines.slice(1, 3), ['DEADLOCK: #4242 (main) waits for #4250 (libuv-threadpool) waits for #4242 (main)', ''])
  t.notOk(sectionBody(renderText(fixture()).split('\n'), 'Threads').some(l => l.startsWith('DEADLOCK')), 'none without')
})

t.test('the report validator (test/helpers/validate.js) takes both views of a report, and tells them apart', async (t) => {
  const { validateReport } = require('./helpers/validate')
  // The fixture, with the fields it leaves out as a report has them.
  const whole = () => {
    const r = fixture()
    r.package.writtenBy = 'caller'
    for (const th of r.threads) {
      Object.assign(th, { threadId: th.kind === 'main' ? 0 : null, workerName: null, interruptedUs: null, waitingForLock: null, asyncCallers: null, ...th })
      th.javascriptSource ??= th.javascript ? 'interrupt' : null
      for (const f of th.native) f.javascript ??= null
    }
    for (const g of r.greenThreads.threads) Object.assign(g, { resources: null, timers: null, promises: null, ...g })
    r.deadlocks ??= []
    r.loadedObjects ??= []
    r.samples ??= null
    return r
  }
  t.throws(() => validateReport(JSON.parse(renderJson(fixture()))), /report\.package\.writtenBy: missing/, 'the bare fixture lacks fields of the schema')
  const json = JSON.parse(renderJson(whole()))
  t.doesNotThrow(() => validateReport(json, renderText(whole())), 'the fixture: both views, one report')
  const fewer = whole()
  fewer.threads[0].native.pop()
  t.throws(() => validateReport(json, renderText(fewer)), /thread 4242: native frames differ/, 'a frame missing from the text view')
  const renamed = whole()
  renamed.threads[0].javascript[0].function = 'other'
  t.throws(() => validateReport(json, renderText(renamed)), /thread 4242: JavaScript frames differ/, 'a JavaScript frame named otherwise')
  const { uv, ...missing } = json.package
  t.throws(() => validateReport({ ...json, package: missing }), /report\.package\.uv: missing/, 'a field of the schema missing')
})

t.test('text: Memory, from the model only', async (t) => {
  const lines = renderText(fixture()).split('\n')
  t.same(sectionBody(lines, 'Memory'), [
    'WARNING: main thread (tid 4242): its old generation is 94.0 MiB, 94% of its 100.0 MiB limit: near the limit, where V8 ends it with "JavaScript heap out of memory"',
    'rss = 100.0 MiB (peak 150.0 MiB), anonymous 70.0 MiB, file-backed 30.0 MiB',
    'swap = 0.0 MiB',
    'file descriptors = 23 open, limit 1024 (hard 4096)',
    '',
    '------                   main thread (tid 4242)                   ------',
    "heap = 95.0 MiB used of 110.0 MiB, old generation 94.0 MiB, 94% of its 100.0 MiB limit (V8's heap limit 148.0 MiB)  [NEAR LIMIT]",
    'figures = as of its last garbage collection, 5.2 s old (it could not answer)',
    'external = 2.0 MiB, of which array buffers 1.0 MiB',
    'gc = 42 collections since met, 123.5 ms in all; last: mark-sweep-compact, 31.50 ms pause, 2016-11-24T15:06:40.000Z',
    'spaces (used / size):',
    '  new_space                       1.0 MiB / 16.0 MiB',
    '  old_space                      94.0 MiB / 94.0 MiB'
  ])
})

t.test('text: Green Threads, Processes, Configuration, user sections, errors', async (t) => {
  const lines = renderText(fixture()).split('\n')
  t.same(sectionBody(lines, 'Green Threads'), [
    '2 event loops: 2 tcp, 1 timer; 3 keep the process alive; 1 request in flight',
    '',
    '------      main thread (tid 4242): has not turned for 5.2 s      ------',
    '4 active handles, 1 request in flight',
    '  tcp server listening on 127.0.0.1:8080',
    '  JavaScript timers: the next overdue by 4.9 s',
    '  signal handler for SIGINT  [unref]',
    '  pipe fd 22  [inactive, closing]',
    "  + 2 of Node's own (async wakeups, the immediates' check and idle handles)",
    '  … and 3 more',
    "Node's active resources: 2 FSReqCallback, 1 TCPServerWrap",
    '3 JavaScript timers',
    '  every 1.0 s: refreshCache (cache.js:12), overdue by 4.9 s',
    '  after 300 ms: <anonymous> (api.js:40), running now',
    '  … and 1 more',
    "30 pending promises (and 5 past the tracker's capacity)",
    '  28 × awaitApproval (orders.js:88), oldest 5m 03s',
    "  2 × Node's internals (no JavaScript frame), oldest 12 ms",
    '',
    '------     worker 1 "resizer" (tid 4250): waiting for events      ------',
    '1 active handle',
    '  (no handles)',
    '  (incomplete: the handle list changed while it was read)'
  ])
  t.same(sectionBody(lines, 'Processes'), [
    'Process 4242 (under 1) [ run by: nova (1000), state: running ]',
    '  uids: real 1000, effective 1000, saved 1000',
    '  gids: real 1000, effective 1000, saved 1000',
    '  command: node /srv/nova/api.js',
    '    Process 4300 (under 4242) [ run by: nova (1000), state: sleeping ]',
    '      uids: real 1000, effective 1000, saved 1000',
    '      gids: real 1000, effective 1000, saved 1000',
    '      command: sh -c worker',
    '        Process 4301 (under 4300) [ run by: nova (1000), state: sleeping ]',
    '          uids: real 1000, effective 1000, saved 1000',
    '          gids: real 1000, effective 1000, saved 1000',
    '          command: worker'
  ])
  t.same(sectionBody(lines, 'Configuration'), [
    'application:',
    '  aws.access = ***',
    '  database.connection = postgresql://***@db.example.com:5432/nova',
    '  db.credentials = ***',
    '  hosts = a.example.com, b.example.com',
    '  http.headers.Authorization = ***',
    '  internal.myCustomField = ***',
    '  internal.x_hidden_y = ***',
    '  tls.bundle = ***',
    '  tls.key_file = /etc/nova/key.pem',
    '  upstream.note = send Bearer ***',
    '  workers = 4',
    'runtime:',
    '  env.NODE_ENV = production',
    '  execPath = /usr/bin/node'
  ])
  t.same(sectionBody(lines, 'Cache'), ['hits = 10', 'misses = 2'], 'a string section prints as is')
  t.same(sectionBody(lines, 'Pool'), ['{', '  "size": "3",', '  "self": "[Circular]"', '}'], 'JSON, cycles and BigInt made safe')
  t.same(sectionBody(lines, 'Stuck'), ['(section unavailable: timed out after 2000 ms)'])
  t.same(sectionBody(lines, 'Errors'), ['threads: thread 4252 did not answer'])

  const clean = renderText(fixture({ errors: [], sections: [] }))
  t.notMatch(clean, /Errors/, 'no errors block without errors')
  t.same(sectionBody(renderText(fixture({ processes: [] })).split('\n'), 'Processes'), ['(no process information)'])
  const noConf = sectionBody(renderText(fixture({ configuration: { application: {}, runtime: {} } })).split('\n'), 'Configuration')
  t.same(noConf, ['application:', '  (none)', 'runtime:', '  (none)'])
})

t.test('text: multi-line values stay indented', async (t) => {
  const r = fixture({ configuration: { application: { banner: 'line one\nline two' }, runtime: {} } })
  const body = sectionBody(renderText(r).split('\n'), 'Configuration')
  t.same(body.slice(0, 3), ['application:', '  banner = line one', '    line two'])
})

t.test('secrets appear nowhere in either view', async (t) => {
  const report = fixture({ configuration: { application: flattenConfig(conf(), ['customfield', /^x_.*_y$/]), runtime: runtimeConfig({ NODE_OPTIONS: '--db-password=pgS3cretPw' }) } })
  const text = renderText(report)
  const json = renderJson(report)
  for (const secret of [...SECRETS, 'hunter2']) {
    t.notOk(text.includes(secret), `text: ${secret}`)
    t.notOk(json.includes(secret), `json: ${secret}`)
  }
})

t.test('json: the model, made safe', async (t) => {
  const report = fixture()
  const parsed = JSON.parse(renderJson(report))
  t.equal(parsed.package.serviceName, 'nova-api')
  t.equal(parsed.threads[0].javascript[1].function, '')
  t.same(parsed.sections[1].content, { size: '3', self: '[Circular]' }, 'BigInt as string, cycle marked, function dropped')
  t.same(JSON.parse(renderJson(fixture({ sections: [] }))), JSON.parse(JSON.stringify(fixture({ sections: [] }))), 'a plain report is JSON.stringify')
  t.equal(renderJson(report), renderJson(report), 'stable')
  t.match(renderJson(report), /^{\n {2}"schema": 2,\n/, 'two-space indent')

  const hostile = {
    get boom () { throw new Error('getter exploded') },
    proxy: new Proxy({}, { ownKeys () { throw new Error('trap') } }),
    buf: Buffer.alloc(1e6),
    big: 1n,
    sym: Symbol('x'),
    when: new Date(0),
    map: new Map([['k', 1n]]),
    set: new Set([1])
  }
  const out = JSON.parse(safeJsonStringify(hostile))
  t.same(out, {
    boom: '[getter threw: getter exploded]',
    proxy: '[unreadable: trap]',
    buf: '<Buffer 1000000 bytes>',
    big: '1',
    when: '1970-01-01T00:00:00.000Z',
    map: { k: '1' },
    set: [1]
  })
  let deep = {}
  for (let i = 0; i < 100000; i++) deep = { d: deep }
  t.doesNotThrow(() => safeJsonStringify(deep), 'very deep values are cut, not a stack overflow')
  t.match(safeJsonStringify(deep), /\[…depth\]/)
  t.equal(safeJsonStringify(undefined), 'null')
  const { proxy: revoked, revoke } = Proxy.revocable({}, {})
  revoke()
  t.doesNotThrow(() => renderJson(fixture({ sections: [{ name: 'x', content: revoked, error: null }] })))
})

t.test('text never throws on a malformed report', async (t) => {
  for (const bad of [{}, fixture({ threads: null, package: undefined, greenThreads: null }),
    fixture({ threads: [null, { tid: 1 }], sections: [null, { name: 'x', content: 1n, error: null }] })]) {
    let text
    t.doesNotThrow(() => { text = renderText(bad) })
    t.ok(text.startsWith(`${RULE}\n====                        Guru Meditation`))
    t.match(text, /Configuration/)
  }
  t.match(renderText({}), /\(could not render: /)
})

t.test('text: a report of 1,000 deep threads has every section after them', async (t) => {
  // 190 lines a thread: past what one spread into push() takes.
  const base = fixture()
  const deep = i => ({
    ...base.threads[0],
    tid: 10000 + i,
    javascript: Array.from({ length: 64 }, (_, k) => ({ function: `f${k}`, file: '/srv/nova/api.js', line: k + 1, column: 1 })),
    native: Array.from({ length: 128 }, (_, k) => ({ address: `0x${(0x1000 + k).toString(16).padStart(16, '0')}`, symbol: `s${k}`, module: '/usr/bin/node', location: `s${k}+0x1`, javascript: null }))
  })
  const text = renderText(fixture({ threads: Array.from({ length: 1000 }, (_, i) => deep(i)) }))
  t.notMatch(text, /could not render/)
  for (const title of ['Green Threads', 'Processes', 'Configuration', 'End of Guru Meditation Report']) {
    t.match(text, new RegExp(`====\\s+${title}\\s+====`), `${title} is there`)
  }
})

t.test('processTree: this process and a spawned child, rendered', async (t) => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', '--', '--db-password=hunter2', 'postgres://u:pw42@h/db'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await new Promise((resolve, reject) => { child.once('spawn', resolve); child.once('error', reject) })

  const tree = processTree()
  t.equal(tree.length, 1, 'one root')
  const root = tree[0]
  t.equal(root.pid, process.pid)
  t.equal(root.ppid, process.ppid)
  t.equal(root.uids.real, process.getuid())
  t.equal(root.gids.effective, process.getegid())
  t.match(root.state, /^(running|sleeping)$/)
  t.match(root.command, /format\.test\.js/)
  t.type(root.user, 'string')
  const kid = root.children.find((c) => c.pid === child.pid)
  t.ok(kid, 'the spawned child is a child of the root')
  t.equal(kid.ppid, process.pid)
  t.match(kid.command, /setTimeout/)
  t.notMatch(kid.command, /hunter2|pw42/, 'command lines are masked')
  t.match(kid.command, /--db-password=\*\*\* postgres:\/\/\*\*\*@h\/db/)

  const text = renderText(fixture({ processes: tree }))
  t.match(text, new RegExp(`^ {4}Process ${child.pid} \\(under ${process.pid}\\) \\[ run by: .+ \\(\\d+\\), state: \\w+ \\]$`, 'm'))

  t.same(processTree(2 ** 22 + 12345), [], 'a process that does not exist gives an empty tree')
})

t.test('text: a worker heading carries its threadId and name; Package says who wrote it', async (t) => {
  const r = fixture()
  r.package.writtenBy = 'main thread (interrupt: it was busy running JavaScript)'
  r.threads.push({ ...r.threads[0], tid: 4260, kind: 'worker', threadId: 3, workerName: 'resizer' },
    { ...r.threads[0], tid: 4261, kind: 'worker', threadId: 4, workerName: null })
  const text = renderText(r)
  t.match(text, /^-+ +Thread #4260 node \(worker 3 "resizer"\) +-+$/m)
  t.match(text, /^-+ +Thread #4261 node \(worker 4\) +-+$/m)
  t.match(text, /^written by = main thread \(interrupt: it was busy running JavaScript\)$/m)
  t.equal(JSON.parse(renderJson(r)).threads.find(th => th.tid === 4260).workerName, 'resizer')
})
