'use strict'
// kill -USR2 on a real service, stuck or idle, preloaded or set up in code.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { APP, SPIN_LINE, mainThread, mainThreadSpun, REPORT_NAME, spawnNode, waitForOutput, tmpDir, waitForReports, isAlive, readReport, sendSignal, settledReports } = require('./helpers')

t.test('SIGUSR2 on a preloaded, stuck service writes a JSON report to logDir', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, ['-r', 'guru-meditation/register', APP, 'preload', 'spin'], {
    env: { GMR_LOG_DIR: dir, GMR_FORMAT: 'json', GMR_SERVICE_NAME: 'stuck-svc', GMR_SECTION_TIMEOUT: '300' }
  })
  await waitForOutput(child, /spinning/)
  await mainThreadSpun(child)
  process.kill(child.pid, 'SIGUSR2')
  const [file] = await waitForReports(dir, 1, 15000, child)

  const name = path.basename(file)
  t.match(name, REPORT_NAME)
  t.equal(name.match(REPORT_NAME)[1], 'stuck-svc')
  t.equal(fs.statSync(file).mode & 0o777, 0o600, 'report is private to its owner')
  t.same(fs.readdirSync(dir).filter(f => f.endsWith('.tmp')), [], 'no temporary file left')

  const report = readReport(file)
  t.equal(report.package.pid, child.pid)
  t.equal(report.package.trigger.kind, 'signal')
  t.equal(report.package.trigger.detail, 'SIGUSR2')
  const main = mainThread(report)
  t.ok(main, 'the main thread is in the report')
  t.equal(main.tid, child.pid)
  t.equal(main.javascript[0].function, 'spinForever', 'the stuck function is the top frame')
  t.equal(path.basename(main.javascript[0].file), 'app.js')
  t.equal(main.javascript[0].line, SPIN_LINE, 'exact line of the loop')
  t.ok(main.javascript[0].column > 0)
  t.ok(report.threads.some(th => th.kind === 'worker'), 'a worker that never loaded the library is listed')
  t.ok(report.threads.length >= 5, `all threads listed (${report.threads.length})`)

  // The main thread is busy in JavaScript: it writes the report from an
  // interrupt, so synchronous sections are there; a promise cannot be waited for.
  t.equal(report.package.writtenBy, 'main thread (interrupt: it was busy running JavaScript)')
  const good = report.sections.find(s => s.name === 'Good Section')
  t.same(good.content, { orders: 3, status: 'fine' }, 'a synchronous section runs although the loop is stuck')
  const slow = report.sections.find(s => s.name === 'Slow Section')
  t.equal(slow.content, null)
  t.match(slow.error, /busy running JavaScript.*a promise cannot be waited for/)
  t.match(report.sections.find(s => s.name === 'Broken Section').error, /the generator threw: section boom/)
  t.equal(report.configuration.runtime.uvThreadpoolSize !== undefined, true, 'the live runtime configuration')
  t.ok(isAlive(child.pid), 'the service keeps running')
})

t.test('repeated signals while a report is written are coalesced, not queued', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'spin'], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json', serviceName: 'burst', sectionTimeout: 500 }) }
  })
  await waitForOutput(child, /spinning/)
  // 20 signals, each delivered before the next is sent (none merged by the kernel).
  for (let i = 0; i < 20; i++) await sendSignal(child.pid)
  const burstEnd = Date.now()
  const reports = (await settledReports(dir)).map(f => ({ report: readReport(f), written: fs.statSync(f).mtimeMs }))
    .sort((a, b) => Date.parse(a.report.package.generatedAt) - Date.parse(b.report.package.generatedAt))
  // Those the watchdog read at once are one report; those that came while
  // it was made, one more, once it was written: every signal is counted
  // in exactly one report.
  const counted = reports.reduce((n, r) => n + 1 + r.report.package.trigger.coalesced, 0)
  t.equal(counted, 20, `the ${reports.length} report(s) account for the 20 signals: ${reports.map(r => `1 + ${r.report.package.trigger.coalesced}`).join(', ')}`)
  if (burstEnd < reports[0].written) t.ok(reports.length >= 1 && reports.length <= 2, `a burst sent within the first report makes it and at most one more (${reports.length})`)
  reports.forEach((r, i) => {
    if (i > 0) t.ok(Date.parse(r.report.package.generatedAt) >= reports[i - 1].written - 10, `report ${i + 1} was captured once report ${i} was written`)
  })
  t.ok(isAlive(child.pid), 'the service survived the burst')
})

t.test('signals while a report is being written bring one more report, of the process after them', async t => {
  const dir = tmpDir(t)
  // The idle service writes from its event loop and waits sectionTimeout
  // for its slow section: each report is in flight for 1.5 s.
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], {
    env: { GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir, format: 'json', sectionTimeout: 1500 }) }
  })
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  await new Promise(resolve => setTimeout(resolve, 500))
  const burstAt = Date.now()
  for (let i = 0; i < 5; i++) await sendSignal(child.pid) // none merged by the kernel
  const files = await waitForReports(dir, 2, 15000, child)
  await new Promise(resolve => setTimeout(resolve, 2500))
  t.equal(fs.readdirSync(dir).filter(f => REPORT_NAME.test(f)).length, 2, 'two reports: the first, and one for the burst that came while it was written')
  // generatedAt is when the capture began.
  const [first, second] = files.map(f => ({ at: Date.parse(readReport(f).package.generatedAt), written: fs.statSync(f).mtimeMs, report: readReport(f) }))
    .sort((a, b) => a.at - b.at)
  t.ok(first.at < burstAt, 'the first report was captured before the burst')
  t.ok(second.at >= burstAt - 5, 'the second after it')
  t.ok(second.at >= first.written - 10, 'once the first was written')
  t.equal(first.report.package.trigger.coalesced, 0, 'the first report answers the one signal before the burst')
  t.equal(second.report.package.trigger.coalesced, 4, 'the burst: one brought the second report, the other four are folded into it')
  t.ok(isAlive(child.pid))
})

t.test('an application listener on the same signal runs, and the report still comes', async t => {
  const dir = tmpDir(t)
  const child = spawnNode(t, [APP, 'programmatic', 'idle'], {
    env: { GMR_TEST_APP_LISTENER: '1', GMR_TEST_OPTIONS: JSON.stringify({ logDir: dir }) }
  })
  await waitForOutput(child, /ready/)
  process.kill(child.pid, 'SIGUSR2')
  await waitForReports(dir, 1, 15000, child)
  await waitForOutput(child, /app listener ran/)
  t.ok(isAlive(child.pid))
})
