'use strict'
// A loaded HTTP service under a storm of report triggers: 200 SIGUSR2 in
// bursts and 50 touches of the trigger file while autocannon drives it on
// loopback. Nothing the clients see changes, and the reports that come are
// whole, folded together, and one at a time.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const autocannon = require('autocannon')
const { FIXTURES, spawnNode, waitForOutput, tmpDir, reportFiles, until, isAlive, readReport, sleep } = require('./helpers')

const SIGNALS = 200
const BURSTS = 10
const TOUCHES = 50
const LOAD_SECONDS = 12


/** The process's threads now. */
const tasks = pid => fs.readdirSync(`/proc/${pid}/task`).map(Number)

/** Reports in dir, once none has appeared for quietMs. */
async function settled (dir, quietMs = 1500) {
  let count = -1
  let since = Date.now()
  await until('the reports to settle', () => {
    const now = reportFiles(dir).length
    if (now !== count) { count = now; since = Date.now() }
    return Date.now() - since >= quietMs
  }, 30000)
  return reportFiles(dir).map(f => path.join(dir, f))
}

t.test('200 signals and 50 trigger-file touches on a service under load', async t => {
  const dir = tmpDir(t)
  const trigger = path.join(dir, 'gmr_trigger')
  const child = spawnNode(t, [path.join(FIXTURES, 'storm.js')], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json', fileEventHandler: trigger, serviceName: 'storm' }) }
  })
  const port = Number((await waitForOutput(child, /^listening (\d+)/m))[1])

  const load = autocannon({ url: `http://127.0.0.1:${port}/`, connections: 8, duration: LOAD_SECONDS, timeout: 5 })
  // The storm, inside the load: a burst of signals every second, a touch
  // every 200 ms.
  let lastTriggerAt = 0
  let stable = null
  const storm = (async () => {
    await sleep(500)
    stable = tasks(child.pid) // the workers are up by now
    let sent = 0
    for (let b = 0; b < BURSTS; b++) {
      for (let i = 0; i < SIGNALS / BURSTS; i++) { lastTriggerAt = Date.now(); process.kill(child.pid, 'SIGUSR2'); sent++ }
      await sleep(1000)
    }
    return sent
  })()
  const touching = (async () => {
    await sleep(600)
    let touched = 0
    for (let i = 0; i < TOUCHES; i++) {
      const at = new Date()
      lastTriggerAt = at.getTime()
      fs.utimesSync(trigger, at, at)
      touched++
      await sleep(200)
    }
    return touched
  })()
  const [result, signals, touches] = await Promise.all([load, storm, touching])

  // Never lost: once all is quiet, the last trigger sent has been answered
  // by a report captured after it.
  const quiet = (await settled(dir)).map(f => readReport(f))
  const latest = Math.max(...quiet.map(r => Date.parse(r.package.generatedAt)))
  t.ok(latest >= lastTriggerAt - 5, `the last trigger (${new Date(lastTriggerAt).toISOString()}) brought a report after it (the latest captured at ${new Date(latest).toISOString()})`)
  // And one more signal now brings one more report.
  process.kill(child.pid, 'SIGUSR2')
  await until('the closing report', () => reportFiles(dir).length > quiet.length, 15000, child)
  const files = await settled(dir)
  stable = stable.filter(tid => tasks(child.pid).includes(tid)) // there all along
  // How many report signals the application saw delivered (its own
  // listener): the kernel merged the others while they were pending.
  const delivered = (await (await fetch(`http://127.0.0.1:${port}/`)).json()).signals

  const errors = result.errors + result.timeouts + result.non2xx
  t.comment(`requests served ${result.requests.total} (2xx ${result['2xx']}), ${result.requests.average} req/s; ` +
    `signals sent ${signals + 1}, touches ${touches}; reports written ${files.length}; ` +
    `errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}`)
  t.ok(result.requests.total > 1000, `the load ran (${result.requests.total} requests)`)
  t.equal(result.errors, 0, 'no connection errors')
  t.equal(result.timeouts, 0, 'no timeouts')
  t.equal(result.non2xx, 0, 'no non-2xx responses')
  t.equal(result['2xx'], result.requests.total, 'every request answered 2xx')
  t.equal(errors, 0)
  t.ok(isAlive(child.pid), 'the service is alive')
  t.notMatch(child.stderrText, /guru-meditation/, 'nothing went wrong on stderr')

  t.same(fs.readdirSync(dir).filter(f => f.endsWith('.tmp')), [], 'no temporary file left')
  const reports = files.map(f => ({ file: f, mtimeMs: fs.statSync(f).mtimeMs, report: readReport(f) }))
  let triggered = 0
  const kinds = new Set()
  for (const { file, report } of reports) {
    const name = path.basename(file)
    t.same(Object.keys(report).sort(), ['capture', 'configuration', 'deadlocks', 'errors', 'greenThreads', 'loadedObjects', 'memory', 'package', 'processes', 'samples', 'schema', 'sections', 'threads'], `${name}: every section`)
    t.same(report.errors, [], `${name}: no errors`)
    t.equal(report.package.pid, child.pid)
    const main = report.threads.find(th => th.kind === 'main')
    const workers = report.threads.filter(th => th.kind === 'worker')
    t.ok(main && main.native.length > 0, `${name}: the main thread with its native stack`)
    if (!t.equal(workers.length, 2, `${name}: both workers`)) {
      t.comment(report.threads.map(th => `${th.tid} ${th.name} ${th.kind} ${th.note} [${th.native.slice(0, 12).map(f => f.location).join(' < ')}]`).join('\n'))
      t.comment(JSON.stringify(report.capture))
    }
    const listed = new Set(report.threads.map(th => th.tid))
    t.same(stable.filter(tid => !listed.has(tid)), [], `${name}: every thread the process had all along is listed (${report.threads.length} threads)`)
    t.equal(report.threads.filter(th => th.kind === 'main').length, 1, `${name}: one main thread`)
    t.ok(report.processes.length >= 1 && report.processes[0].pid === child.pid, `${name}: the process tree`)
    const traffic = report.sections.find(s => s.name === 'Traffic')
    t.ok(traffic && traffic.error === null && traffic.content.served >= 0, `${name}: the user section`)
    triggered += 1 + report.package.trigger.coalesced
    kinds.add(report.package.trigger.kind)
  }
  t.same([...kinds].sort(), ['file', 'signal'], 'reports from both triggers')
  // A report counts the triggers folded into it: the signals the eventfd
  // added up before the watchdog woke, and those that came while a report
  // was in flight. Every signal delivered is counted once; a touch is
  // counted once per change the watchdog reads (several touches between
  // two reads are one), at least once per report it started itself. So a
  // lost signal, or a lost trigger of either kind, falls below the floor.
  const fileReports = reports.filter(r => r.report.package.trigger.kind === 'file').length
  t.comment(`reports plus the triggers folded into them: ${triggered}; signals delivered ${delivered} of ${signals + 1} sent, touches ${touches}, ${fileReports} reports started by a touch`)
  t.ok(triggered >= delivered + fileReports, `none lost: ${triggered} counted, at least the ${delivered} signals delivered and the ${fileReports} touches that started a report`)
  t.ok(triggered <= delivered + touches, `none counted twice: ${triggered} counted, at most ${delivered} signals and ${touches} touches`)
  // Never queued: a burst makes a report and folds into it, or into the
  // one after, what came meanwhile.
  const sent = signals + 1 + touches
  t.ok(reports.length <= touches + 2 * BURSTS + 1, `coalesced: ${reports.length} reports for ${sent} triggers`)
  t.ok(reports.length >= BURSTS, `each burst brought a report (${reports.length})`)
  // One at a time: each report's capture starts after the previous file
  // was written (file times lag the clock by a tick at most).
  const spans = reports.map(r => ({ start: Date.parse(r.report.package.generatedAt), end: r.mtimeMs })).sort((a, b) => a.start - b.start)
  const overlaps = spans.filter((s, i) => i > 0 && s.start < spans[i - 1].end - 10)
  t.same(overlaps, [], 'no report started before the previous one was written')
})
