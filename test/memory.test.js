'use strict'
// The Memory section: the process's figures read natively at the capture,
// and each JavaScript thread's heap as recorded on its own thread (at its
// collections, and when it answers the report), with their age.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { parseText } = require('./helpers/validate')
const { FIXTURES, spawnNode, waitForOutput, signalForReport, tmpDir, mainThreadSpun, sleep } = require('./helpers')

const FIXTURE = path.join(FIXTURES, 'memory.js')
const MB = 1024 * 1024

function start (t, scene, { format = 'json', fdLimit = 0 } = {}) {
  const dir = tmpDir(t)
  const child = spawnNode(t, [FIXTURE, scene], { env: { GMR_LOG_DIR: dir, GMR_FORMAT: format }, fdLimit })
  return { dir, child }
}

const heapOf = (report, pred) => report.memory.threads.find(pred)

t.test('process figures, and a worker that never loaded the library shows its heap', async t => {
  const { dir, child } = start(t, 'worker', { fdLimit: 777 })
  const allocated = Number((await waitForOutput(child, /allocated (\d+)/))[1])
  // Idle threads are not woken for their figures: a report asks them to
  // record at their next JavaScript, and the next report has them.
  const first = await signalForReport(child, dir)
  await sleep(300)
  const report = await signalForReport(child, dir, 2)
  const p = report.memory.process
  t.ok(p.rssBytes > 20 * MB, `RSS ${p.rssBytes}`)
  t.ok(p.peakRssBytes >= p.rssBytes, 'the peak is at least the RSS')
  t.ok(p.anonymousBytes > 0 && p.fileBackedBytes > 0, 'anonymous and file-backed')
  t.ok(Math.abs(p.anonymousBytes + p.fileBackedBytes - p.rssBytes) <= p.rssBytes * 0.1, 'their sum is about the RSS (shared memory aside)')
  t.ok(p.fds >= 3, `${p.fds} descriptors`)
  t.equal(p.fdLimit, 777, 'the limit ulimit -n set')
  const fdsNow = fs.readdirSync(`/proc/${child.pid}/fd`).length
  t.ok(Math.abs(p.fds - fdsNow) <= 5, `descriptors ${p.fds}, /proc says ${fdsNow} now`)

  const main = heapOf(report, m => m.tid === child.pid)
  t.equal(main.label, 'main thread')
  t.ok(heapOf(first, m => m.tid === child.pid).heap, 'the first report has the figures the main thread recorded when met')
  // Asked by the first report, it recorded them as it wrote that one (or
  // collected garbage since, which records them too): recent either way.
  t.ok(['report', 'gc', 'earlier'].includes(main.heap.source) && main.heap.ageMs < 2000, `recent figures of the idle main thread (${main.heap.source}, ${main.heap.ageMs} ms)`)
  t.ok(main.heap.arrayBuffersBytes !== null, 'the writing thread counts its array buffers')
  // By its tid: a worker first met by this very report is named
  // (threadId) from the next one on.
  const worker = heapOf(report, m => m.tid !== child.pid)
  t.ok(worker && worker.heap, 'the worker has heap figures')
  t.ok(['report', 'gc', 'earlier'].includes(worker.heap.source) && worker.heap.ageMs < 2000, `asked by the first report, recorded at its next timer or collection since (${worker.heap.source}, ${worker.heap.ageMs} ms)`)
  t.ok(worker.heap.usedBytes >= allocated * 0.9, `used ${worker.heap.usedBytes} >= ~${allocated}`)
  t.ok(worker.heap.usedBytes <= worker.heap.totalBytes && worker.heap.totalBytes <= worker.heap.limitBytes)
  // Where they live depends on V8's generations (Node 22's young one holds
  // more): in the spaces, whichever.
  const inSpaces = worker.heap.spaces.reduce((n, s) => n + s.usedBytes, 0)
  t.ok(inSpaces > 30 * MB, `its arrays are in its spaces (${inSpaces} bytes used in all)`)
  t.equal(worker.heap.arrayBuffersBytes, null, 'array buffers: the writing thread only')
  t.equal(worker.heap.nearLimit, false, `${worker.heap.percentOfLimit}% of its limit`)
  t.same(report.memory.warnings, [])
})

t.test('a main thread stuck in while (true) still gets a Memory section; a blocked worker\'s figures age', async t => {
  const { dir, child } = start(t, 'stuck')
  await waitForOutput(child, /spinning/)
  await mainThreadSpun(child)
  const first = await signalForReport(child, dir, 1)
  await sleep(700)
  const second = await signalForReport(child, dir, 2)
  for (const r of [first, second]) {
    const main = heapOf(r, m => m.tid === child.pid)
    t.equal(main.heap.source, 'report', 'the spinning main thread answers the interrupt with its figures')
    t.ok(main.heap.ageMs < 1000 && main.heap.usedBytes > 0)
  }
  const w1 = heapOf(first, m => m.threadId === 1).heap
  const w2 = heapOf(second, m => m.threadId === 1).heap
  t.ok(w1 && w2, 'the blocked worker has figures from before it blocked')
  t.not(w2.source, 'report', `it could not answer: figures from before (${w2.source})`)
  t.equal(w2.atMs, w1.atMs, 'the same figures')
  t.ok(w2.ageMs >= w1.ageMs + 500, `their age grows: ${w1.ageMs} ms, then ${w2.ageMs} ms`)
})

// Node 24's V8 ends a worker this small at a fill that varies from run to
// run around the band the line is for (1 run in 5 here): tested on 20 and 22.
const NEAR_LIMIT_FILL_STEADY = Number(process.versions.node.split('.')[0]) < 24
t.test('a heap near its limit gets the near-limit line, in the text view too', { skip: !NEAR_LIMIT_FILL_STEADY && "Node 24's V8 ends the 16 MB worker at a fill that varies around the near-limit band" }, async t => {
  const { dir, child } = start(t, 'limit', { format: 'text' })
  await waitForOutput(child, /allocated (\d+)/)
  // A first report meets the worker if it was still filling its heap when
  // it came online (no meeting round could hold it): named from then on.
  await signalForReport(child, dir)
  await sleep(200)
  const text = await signalForReport(child, dir, 2)
  const memory = parseText(text).sections.find(s => s.title === 'Memory').body
  t.match(memory, /^WARNING: worker 1( "[^"]*")? \(tid \d+\): its old generation is 1\d\.\d MiB, (8[5-9]|9\d|1\d\d)(\.\d)?% of its 16\.0 MiB limit: near the limit/m)
  t.match(memory, /^heap = .*, old generation 1\d\.\d MiB, \d+(\.\d)?% of its 16\.0 MiB limit .*\[NEAR LIMIT\]$/m)
  t.notMatch(child.stdoutText, /worker failed/)
})
