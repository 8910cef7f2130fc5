'use strict'
// Several captures folded per thread: `gmr <pid> --samples N --interval MS`
// and generateReport({ samples, intervalMs }). A real process, real
// signals; the folded report through the shared validator.
const t = require('tap')
const { APP, SPIN_LINE, spawnNode, waitForOutput, mainThreadSpun, runGmr, ROOT } = require('./helpers')
const { parseText } = require('./helpers/validate')

t.test('gmr --samples 3 --interval 100 on a stuck service: the main thread 3/3 in its loop, stuck', async t => {
  const child = spawnNode(t, [APP, 'programmatic', 'spin'])
  await waitForOutput(child, /spinning/)
  await mainThreadSpun(child)
  const json = await runGmr([String(child.pid), '--samples', '3', '--interval', '100', '--json'])
  t.equal(json.code, 0, json.stderr)
  const r = JSON.parse(json.stdout)
  t.equal(r.samples.count, 3)
  t.equal(r.samples.intervalMs, 100)
  t.ok(r.samples.coveredMs >= 200, `they cover the time asked (${r.samples.coveredMs} ms)`)
  const main = r.samples.threads.find(th => th.tid === child.pid)
  t.same(main.places, [{ where: `spinForever (${APP}:${SPIN_LINE})`, count: 3 }], 'every capture in its loop, at its line')
  t.equal(main.stuck, true, 'stuck: the same stack in every capture')
  t.equal(main.seen, 3)

  const text = await runGmr([String(child.pid), '--samples', '2', '--interval', '50'])
  t.equal(text.code, 0, text.stderr)
  const body = parseText(text.stdout).sections.find(s => s.title === 'Samples').body
  t.match(body, /^2 captures, 50 ms apart, over \d+ ms; the other sections are the last one's$/m)
  t.match(body, new RegExp(`^#${child.pid} \\(main\\): 2/2 in spinForever \\(.*app\\.js:${SPIN_LINE}\\)  \\[STUCK: the same stack in every capture\\]$`, 'm'))
})

t.test('gmr: bad --samples and --interval are refused, naming them', async t => {
  for (const [args, re] of [[['--samples', '1'], /--samples takes a whole number from 2 to 100/], [['--samples', 'x'], /--samples/], [['--samples', '3', '--interval', '5'], /--interval takes a whole number of milliseconds from 10 to 60000/]]) {
    const r = await runGmr([String(process.pid), ...args])
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, re)
  }
})

t.test('generateReport({ samples, intervalMs }): a spinning worker is stuck, the caller is not; bad values are OptionErrors', async t => {
  const child = spawnNode(t, ['-e', `
    const { Worker } = require('node:worker_threads')
    const gmr = require(${JSON.stringify(ROOT)})
    const w = new Worker('require(${JSON.stringify(ROOT)}); for (;;) {}', { eval: true })
    setTimeout(async () => {
      const errors = []
      for (const bad of [{ samples: 0 }, { samples: 101 }, { samples: 2.5 }, { samples: 3, intervalMs: 1 }]) {
        try { await gmr.generateReport(bad); errors.push('none') } catch (err) { errors.push(err.name + ': ' + err.message) }
      }
      const r = JSON.parse(await gmr.generateReport({ format: 'json', samples: 3, intervalMs: 50 }))
      console.log(JSON.stringify({ errors, samples: r.samples, workerTid: r.threads.find(th => th.kind === 'worker').tid }))
      process.exit(0)
    }, 300)
  `])
  await child.exited
  const out = JSON.parse(child.stdoutText)
  t.equal(out.samples.count, 3)
  const worker = out.samples.threads.find(th => th.tid === out.workerTid)
  t.equal(worker.stuck, true, `the spinning worker: ${JSON.stringify(worker.places)}`)
  t.equal(worker.places[0].count, 3)
  t.match(out.errors[0], /option samples: must be an integer from 1 to 100, got 0/)
  t.match(out.errors[1], /got 101/)
  t.match(out.errors[2], /got 2\.5/)
  t.match(out.errors[3], /option intervalMs: must be an integer from 10 to 60000, got 1/)
})
