'use strict'
// The unwinder's and the symbolizer's own test programs (native/*/..._test.cc):
// built with the system compiler and run; each exits non-zero on a failure.
// The unwinder's also cross-built for AArch64 and run under qemu-aarch64
// (skipped without them): the same chains sampled on AArch64, with and
// without pointer authentication of return addresses.
const t = require('tap')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { ROOT } = require('./helpers')

const programs = [
  ['unwinder, optimized without frame pointers', ['-O2', '-fomit-frame-pointer', '-rdynamic', '-pthread', 'native/unwind/unwind_test.cc', 'native/unwind/unwind.cc', 'native/unwind/eh_frame.cc']],
  ['unwinder, unoptimized', ['-O0', '-rdynamic', '-pthread', 'native/unwind/unwind_test.cc', 'native/unwind/unwind.cc', 'native/unwind/eh_frame.cc']],
  ['symbolizer', ['-O2', 'native/symbolize/symbolize_test.cc', 'native/symbolize/symbolize.cc', 'native/util/proc.cc']]
]

const SYSROOT = '/usr/aarch64-linux-gnu'
const onPath = cmd => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
const arm64Missing = !onPath('aarch64-linux-gnu-g++') ? 'no aarch64-linux-gnu-g++ (apt-get install crossbuild-essential-arm64)'
  : !onPath('qemu-aarch64') ? 'no qemu-aarch64 (apt-get install qemu-user)' : false
// Pointer authentication on (qemu's "max" CPU), with qemu's own signing
// algorithm: the architected one (QARMA) is emulated eight times slower.
const QEMU = ['qemu-aarch64', '-cpu', 'max,pauth-impdef=on', '-L', SYSROOT]
const arm64Programs = [
  ['unwinder on AArch64, optimized without frame pointers', ['-O2', '-fomit-frame-pointer', '-rdynamic', '-pthread', 'native/unwind/unwind_test.cc', 'native/unwind/unwind.cc', 'native/unwind/eh_frame.cc']],
  ['unwinder on AArch64, return addresses signed (-mbranch-protection=standard)', ['-O2', '-mbranch-protection=standard', '-rdynamic', '-pthread', 'native/unwind/unwind_test.cc', 'native/unwind/unwind.cc', 'native/unwind/eh_frame.cc']]
]

const runs = [
  ...programs.map(([name, args]) => [name, args, 'g++', []]),
  ...arm64Programs.map(([name, args]) => [name, args, 'aarch64-linux-gnu-g++', QEMU, arm64Missing, ['5000']])
]

for (const [name, args, compiler, runner, skip = false, argv = []] of runs) {  // argv: the number of garbage stacks, fewer under qemu
  t.test(name, { skip }, t => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-native-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    // Named after its source: the symbolizer test looks for its own name.
    const exe = path.join(dir, path.basename(args.find(a => a.endsWith('_test.cc')), '.cc'))
    const build = spawnSync(compiler, ['-std=c++17', ...args, '-o', exe, '-ldl'], { cwd: ROOT, encoding: 'utf8' })
    t.equal(build.status, 0, `builds: ${build.stderr}`)
    const [command, ...prefix] = [...runner, exe, ...argv]
    const run = spawnSync(command, prefix, { cwd: ROOT, encoding: 'utf8', timeout: 120000 })
    t.equal(run.status, 0, `passes:\n${run.stdout}\n${run.stderr}`)
    t.end()
  })
}
