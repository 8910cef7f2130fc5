'use strict'
// Other Node lines from the npm registry, without the internet otherwise:
// the newest node-linux-<arch>@<major> package (Node's own binary and
// headers), unpacked into a cache under the temporary directory. The prebuild
// script takes its headers; CI runs the test suite and the install check with
// its binary. `node scripts/node-lines.js 22 24` prints "<major> <version>
// <bin dir>" per line; `--arch arm64` before the specs takes the linux-arm64
// packages instead of linux-x64 (the arm64 tests run their node under qemu).
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

// Not shared with older checkouts' prebuild script, which cleared guru-meditation-prebuild/ for its own use.
const CACHE = path.join(os.tmpdir(), 'gmr-node-lines')

function run (cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
}

const ARCHES = ['x64', 'arm64']

/**
 * `spec`: a major (22) or an exact version (20.20.2); `arch`: 'x64' (the
 * default) or 'arm64'. Returns { version, root } with root/bin/node and
 * root/include/node.
 */
function fetchNodeLine (spec, arch = 'x64') {
  if (!ARCHES.includes(arch)) throw new Error(`no node-linux-${arch} package: one of ${ARCHES.join(', ')}`)
  const name = `node-linux-${arch}`
  const dir = path.join(CACHE, `${name}-${spec}`)
  fs.mkdirSync(dir, { recursive: true })
  // npm's cache makes this quick after the first time.
  const tarball = run('npm', ['pack', `${name}@${spec}`, '--silent', '--pack-destination', dir]).split('\n').pop()
  const version = tarball.slice(name.length + 1).replace(/\.tgz$/, '')
  const root = path.join(dir, 'package')
  let unpacked = null
  try { unpacked = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version } catch {}
  if (unpacked !== version || !fs.existsSync(path.join(root, 'bin', 'node'))) {
    fs.rmSync(root, { recursive: true, force: true })
    run('tar', ['-xzf', path.join(dir, tarball), '-C', dir, 'package/package.json', 'package/include', 'package/bin/node'])
  }
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.tgz') && f !== tarball) fs.rmSync(path.join(dir, f))
  return { version, root }
}

module.exports = { CACHE, ARCHES, fetchNodeLine }

if (require.main === module) {
  const args = process.argv.slice(2)
  let arch = 'x64'
  if (args[0] === '--arch') {
    arch = args[1]
    args.splice(0, 2)
  }
  for (const spec of args) {
    const { version, root } = fetchNodeLine(spec, arch)
    console.log(`${spec} ${version} ${path.join(root, 'bin')}`)
  }
}
