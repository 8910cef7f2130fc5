'use strict'
// No binary for this Node: require fails with one message saying which Node,
// which binaries were found and how to build one; a binary of another ABI
// is never loaded (it could end the process). In copies of the package.
const t = require('tap')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, spawnNode, tmpDir, waitForReports, readReport } = require('./helpers')

const { binaryAbi } = require('../dist/util/elf-abi')

const ABI = process.versions.modules
// The binary this Node uses (the local build, or with PREBUILDS_ONLY the prebuilt one).
const LOCAL = [
  ...(process.env.PREBUILDS_ONLY ? [] : [path.join(ROOT, 'build', 'Release', 'guru_meditation.node')]),
  path.join(ROOT, 'prebuilds', 'linux-x64', `guru-meditation.abi${ABI}.node`)
].find(f => fs.existsSync(f) && binaryAbi(f) === Number(ABI))

/** The package's JavaScript in a directory of its own, with the binaries given ({ relative path: Buffer }). */
function packageCopy (t, binaries) {
  const dir = path.join(tmpDir(t), 'guru-meditation')
  fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true })
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'))
  for (const [rel, data] of Object.entries(binaries)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
    fs.writeFileSync(path.join(dir, rel), data)
  }
  return dir
}

/** This build with its ABI mark rewritten: what a binary built for another Node says. */
function withAbiMark (mark) {
  const data = fs.readFileSync(LOCAL)
  const at = data.indexOf(`node-abi=${ABI}\0`)
  if (at < 0) throw new Error('no ABI mark in the local build')
  const out = Buffer.from(data)
  out.write(`node-abi=${mark}`.padEnd(`node-abi=${ABI}`.length, '\0'), at, 'latin1')
  return out
}

async function requireIn (t, dir, code = 'lib.generateReport().then(r => console.log("REPORT " + r.length))') {
  const script = `
    let lib
    try { lib = require(${JSON.stringify(dir)}) } catch (err) {
      console.log('ERROR ' + JSON.stringify({ message: err.message }))
      process.exit(3)
    }
    ${code}
  `
  const child = spawnNode(t, ['-e', script], { env: { PREBUILDS_ONLY: undefined } })
  const exit = await child.exited
  const m = child.stdoutText.match(/^ERROR (.*)$/m)
  return { exit, error: m && JSON.parse(m[1]).message, child }
}

function checkMessage (t, message) {
  t.match(message, new RegExp(`^guru-meditation: no native binary for Node ${process.version.replace(/\./g, '\\.')} \\(ABI ${ABI}, linux-x64\\)`), 'says which Node and ABI')
  t.match(message, /npm rebuild guru-meditation/, 'says how to build one')
  t.match(message, /npm install-scripts approve guru-meditation/, 'and how to approve the install script')
  t.notMatch(message, /\n/, 'one line')
  t.notMatch(message, /node-gyp-build|dlopen|Require stack/, 'no loader trace')
}

t.test('no binary at all', async t => {
  const { exit, error } = await requireIn(t, packageCopy(t, {}))
  t.equal(exit.code, 3, 'require threw')
  checkMessage(t, error)
  t.match(error, /Binaries found: none\./, 'none found')
})

t.test('a local build of another ABI is not loaded', async t => {
  const dir = packageCopy(t, { 'build/Release/guru_meditation.node': withAbiMark(999) })
  const { exit, error } = await requireIn(t, dir)
  t.same(exit, { code: 3, signal: null }, 'require threw; the process was not killed')
  checkMessage(t, error)
  t.match(error, /Binaries found: build\/Release\/guru_meditation\.node \(ABI 999\)\./, 'names the binary found and its ABI')
})

t.test('a local build from before binaries were marked is not loaded', async t => {
  const unmarked = Buffer.from(fs.readFileSync(LOCAL))
  unmarked.write('xxxxxxxx', unmarked.indexOf('node-abi='), 'latin1')
  const dir = packageCopy(t, { 'build/Release/guru_meditation.node': unmarked })
  const { error } = await requireIn(t, dir)
  checkMessage(t, error)
  t.match(error, /build\/Release\/guru_meditation\.node \(ABI unknown/, 'its ABI is unknown')
})

t.test('a stale local build of another ABI does not hide a matching prebuilt binary', async t => {
  const dir = packageCopy(t, {
    'build/Release/guru_meditation.node': withAbiMark(999),
    [`prebuilds/linux-x64/guru-meditation.abi${ABI}.node`]: fs.readFileSync(LOCAL)
  })
  const { exit, error, child } = await requireIn(t, dir)
  t.equal(error, null, 'require worked')
  t.equal(exit.code, 0, 'exit 0')
  t.match(child.stdoutText, /^REPORT \d+$/m, 'a report from the prebuilt binary')
})

/** This build with its ELF header's machine rewritten: what a binary built for another architecture says. */
function withMachine (machine) {
  const out = Buffer.from(fs.readFileSync(LOCAL))
  out.writeUInt16LE(machine, 18)
  return out
}

t.test('a local build for another architecture is not loaded, and is named so', async t => {
  const dir = packageCopy(t, { 'build/Release/guru_meditation.node': withMachine(183) })
  const { exit, error } = await requireIn(t, dir)
  t.same(exit, { code: 3, signal: null }, 'require threw')
  checkMessage(t, error)
  t.match(error, new RegExp(`none is built for this ABI on ${process.arch}\\. Binaries found: build/Release/guru_meditation\\.node \\(ABI ${ABI}, built for arm64\\)\\.`), 'names its architecture')
})

t.test('a local build for another architecture does not hide the prebuilt binary', async t => {
  const dir = packageCopy(t, {
    'build/Release/guru_meditation.node': withMachine(183),
    [`prebuilds/linux-x64/guru-meditation.abi${ABI}.node`]: fs.readFileSync(LOCAL)
  })
  const { exit, error, child } = await requireIn(t, dir)
  t.equal(error, null, 'require worked')
  t.equal(exit.code, 0, 'exit 0')
  t.match(child.stdoutText, /^REPORT \d+$/m, 'a report from the prebuilt binary')
})

t.test('the preload says it in one line and exits 1', async t => {
  const dir = packageCopy(t, {})
  const child = spawnNode(t, ['-r', path.join(dir, 'dist', 'register.js'), '-e', 'console.log("APP RAN")'], { env: { PREBUILDS_ONLY: undefined } })
  const exit = await child.exited
  t.same(exit, { code: 1, signal: null }, 'exit 1')
  t.notMatch(child.stdoutText, /APP RAN/, 'the application did not run without it')
  checkMessage(t, child.stderrText.trim())
})

// In a pid namespace whose /proc was not remounted (unshare --pid --fork),
// /proc names the process by its pid outside: -r register still sets up on
// the main thread (and only there), and a signal brings a report.
t.test('-r register in a pid namespace with the outer /proc: set up, and a report comes', async t => {
  const probe = require('node:child_process').spawnSync('unshare', ['--pid', '--fork', 'true'])
  if (probe.error || probe.status !== 0) return t.skip('unshare --pid needs privileges here')
  const dir = tmpDir(t)
  // --kill-child: node (pid 1 inside) ends with unshare, which the test kills.
  const child = spawnNode(t, ['-r', path.join(ROOT, 'dist', 'register.js'), '-e', `
    const { Worker } = require('node:worker_threads')
    new Worker('setInterval(() => {}, 1000)', { eval: true }).unref()
    console.log('pid ' + process.pid)
    setTimeout(() => process.kill(process.pid, 'SIGUSR2'), 300)
    setInterval(() => {}, 1000)
  `], { env: { GMR_LOG_DIR: dir, GMR_FORMAT: 'json' }, wrapper: ['unshare', '--pid', '--fork', '--kill-child'] })
  const [file] = await waitForReports(dir, 1, 15000, child)
  t.match(child.stdoutText, /^pid 1\n/, 'pid 1 in its namespace')
  t.equal(readReport(file).package.trigger.kind, 'signal')
  t.equal(child.stderrText, '', 'nothing on stderr')
})
