'use strict'
// Two copies of the library in one process (two versions in one
// dependency tree, both set up, and a worker loading the other copy): one
// watchdog, one handler, one capture signal, one report per signal.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, FIXTURES, spawnNode, waitForOutput, tmpDir, reportFiles, until, isAlive, readReport, checkReports, sleep } = require('./helpers')


// The binary this Node loads: the local build, or with PREBUILDS_ONLY (CI
// on Node 22 and 24) its prebuilt one.
const BINARY = process.env.PREBUILDS_ONLY
  ? path.join('prebuilds', `${process.platform}-${process.arch}`, `guru-meditation.abi${process.versions.modules}.node`)
  : path.join('build', 'Release', 'guru_meditation.node')

/** A copy of the built package in dir/node_modules/name, as npm would install it. */
function installCopy (dir, name, version) {
  const to = path.join(dir, 'node_modules', name)
  fs.mkdirSync(path.join(to, path.dirname(BINARY)), { recursive: true })
  fs.cpSync(path.join(ROOT, 'dist'), path.join(to, 'dist'), { recursive: true })
  fs.copyFileSync(path.join(ROOT, BINARY), path.join(to, BINARY))
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  fs.writeFileSync(path.join(to, 'package.json'), JSON.stringify({ ...pkg, name, version }))
}

/** Real-time signals the process catches (SigCgt), besides the report signal. */
function caughtRealtime (pid) {
  const mask = BigInt('0x' + /^SigCgt:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1])
  const out = []
  for (let sig = 34; sig <= 64; sig++) if ((mask >> BigInt(sig - 1)) & 1n) out.push(sig)
  return out
}

t.test('two copies of the library, both set up, one loaded in a worker: reports once per signal', async t => {
  const dir = tmpDir(t)
  installCopy(dir, 'gm-a', '1.0.0')
  installCopy(dir, 'gm-b', '2.0.0')
  fs.mkdirSync(path.join(dir, 'reports'))
  const child = spawnNode(t, [path.join(FIXTURES, 'two-copies.js')], { env: { GMR_TEST_DIR: dir } })
  await waitForOutput(child, /^ready/m)
  const reports = path.join(dir, 'reports')

  const maps = fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8')
  const binaries = new Set(maps.split('\n').filter(l => /(guru_meditation|guru-meditation\.abi\d+)\.node$/.test(l)).map(l => l.split(/\s+/).pop()))
  t.equal(binaries.size, 1, `one native binary loaded (${[...binaries].join(', ')})`)
  t.equal(caughtRealtime(child.pid).length, 1, 'one capture signal handler')

  const SIGNALS = 5
  for (let n = 1; n <= SIGNALS; n++) {
    child.kill('SIGUSR2')
    await until(`report ${n}`, () => reportFiles(reports).length >= n, 15000, child)
    await sleep(300)
  }
  await sleep(700)
  const files = checkReports(reports).map(f => path.basename(f))
  t.equal(files.length, SIGNALS, 'one report per signal')
  const r = readReport(path.join(reports, files[files.length - 1]))
  t.equal(r.threads.filter(th => th.name.startsWith('gmr-watchdog')).length, 1, 'one watchdog thread')
  t.same(r.sections.map(s => s.name).sort(), ['From A', 'From B'], "both copies' sections")
  t.equal(r.package.vendor, 'b', 'the last setup applies')
  t.ok(isAlive(child.pid))
  t.notMatch(child.stderrText, /guru-meditation|Error/)
})
