'use strict'
// The packed library in a fresh application, as a user gets it:
//   node scripts/check-install.js <tarball> [<node bin dir> ...]
// For each Node (this one when none is given): `npm install <tarball>` into
// an empty application directory, with that Node first on PATH; no build
// step may happen (no build/ directory in the installed package: the
// prebuilt binary is used); then a service that preloads the library gets
// stuck in a busy loop, and `gmr <pid>` must print its report, naming the
// main thread running JavaScript. Any failure ends with status 1 and says why.
const { execFileSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const STEP_TIMEOUT_MS = 120000

class Failure extends Error {}

// Thrown, so that the check's finally kills its service and removes its directory.
function fail (message) {
  throw new Failure(message)
}

async function check (nodeBin, tarball) {
  const started = Date.now()
  const node = path.join(nodeBin, 'node')
  const env = { ...process.env, PATH: `${nodeBin}:${process.env.PATH}` }
  for (const key of Object.keys(env)) if (/^(npm_|NODE_OPTIONS$|PREBUILDS_ONLY$)/i.test(key)) delete env[key]
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-install-'))
  let service = null
  try {
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'install-check', version: '1.0.0', private: true }))
    fs.writeFileSync(path.join(app, 'service.js'), [
      "console.log('ready')",
      'function stuck () { for (;;) {} }',
      'stuck()'
    ].join('\n'))
    execFileSync('npm', ['install', tarball, '--no-audit', '--no-fund'], { cwd: app, env, stdio: ['ignore', 'pipe', 'inherit'], timeout: STEP_TIMEOUT_MS })
    const installed = path.join(app, 'node_modules', 'guru-meditation')
    if (!fs.existsSync(path.join(installed, 'package.json'))) fail(`${version}: the package is not installed`)
    if (fs.existsSync(path.join(installed, 'build'))) fail(`${version}: a build step ran (${installed}/build exists)`)
    const abi = execFileSync(node, ['-p', 'process.versions.modules'], { encoding: 'utf8' }).trim()
    // This Node's binary, and the arm64 one of its ABI (test/arm64/ runs
    // those) unless the prebuilds were asked for without it.
    const arches = (process.env.GMR_PREBUILD_ARCHES || 'x64 arm64').split(/[\s,]+/).filter(Boolean)
    for (const binary of arches.map(arch => `prebuilds/linux-${arch}/guru-meditation.abi${abi}.node`)) {
      if (!fs.existsSync(path.join(installed, binary))) fail(`${version}: the tarball has no ${binary}`)
    }

    service = spawn(node, ['-r', 'guru-meditation/register', 'service.js'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    service.stdout.on('data', d => { out += d })
    service.stderr.on('data', d => { err += d })
    const deadline = Date.now() + 15000
    while (!out.includes('ready')) {
      if (service.exitCode !== null) fail(`${version}: the service exited (${service.exitCode}): ${err}`)
      if (Date.now() > deadline) fail(`${version}: the service did not start: ${err}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    // Given a moment to be well inside its loop.
    await new Promise(resolve => setTimeout(resolve, 200))
    const report = execFileSync(node, [path.join(app, 'node_modules', '.bin', 'gmr'), String(service.pid), '--timeout', '20'],
      { cwd: app, env, encoding: 'utf8', timeout: STEP_TIMEOUT_MS })
    const main = new RegExp(`Thread #${service.pid} \\S+ \\(main\\)[^]*?note = running JavaScript in stuck \\(service\\.js:2\\)`)
    if (!/={4} +Guru Meditation +={4}/.test(report) || !main.test(report)) fail(`${version}: the report does not show the stuck main thread:\n${report}`)
    if (!report.includes(`node = ${version}`)) fail(`${version}: the report names another Node:\n${report.slice(0, 2000)}`)
    console.log(`check-install: ${version}: installed from ${path.basename(tarball)} without a build step, gmr ${service.pid} printed the report of the stuck service (${Date.now() - started} ms)`)
  } finally {
    if (service && service.exitCode === null) service.kill('SIGKILL')
    fs.rmSync(app, { recursive: true, force: true })
  }
}

const [tarball, ...bins] = process.argv.slice(2)
;(async () => {
  if (!tarball || !fs.existsSync(tarball)) fail('usage: node scripts/check-install.js <tarball> [<node bin dir> ...]')
  for (const bin of bins.length ? bins : [path.dirname(process.execPath)]) await check(bin, path.resolve(tarball))
})().catch(err => {
  console.error(`check-install: FAILED: ${err instanceof Failure ? err.message : err.stack}`)
  process.exit(1)
})
