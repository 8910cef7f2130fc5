'use strict'
// The unwinder's and the symbolizer's own test programs (native/*/..._test.cc):
// built with the system compiler and run; each exits non-zero on a failure.
const t = require('tap')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { ROOT } = require('./helpers')

const programs = [
  ['unwinder, optimized without frame pointers', ['-O2', '-fomit-frame-pointer', '-rdynamic', '-pthread', 'native/unwind/unwind_test.cc', 'native/unwind/unwind.cc']],
  ['unwinder, unoptimized', ['-O0', '-rdynamic', '-pthread', 'native/unwind/unwind_test.cc', 'native/unwind/unwind.cc']],
  ['symbolizer', ['-O2', 'native/symbolize/symbolize_test.cc', 'native/symbolize/symbolize.cc', 'native/util/proc.cc']]
]

for (const [name, args] of programs) {
  t.test(name, t => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-native-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    // Named after its source: the symbolizer test looks for its own name.
    const exe = path.join(dir, path.basename(args.find(a => a.endsWith('_test.cc')), '.cc'))
    const build = spawnSync('g++', ['-std=c++17', ...args, '-o', exe, '-ldl'], { cwd: ROOT, encoding: 'utf8' })
    t.equal(build.status, 0, `builds: ${build.stderr}`)
    const run = spawnSync(exe, [], { cwd: ROOT, encoding: 'utf8', timeout: 120000 })
    t.equal(run.status, 0, `passes:\n${run.stdout}\n${run.stderr}`)
    t.end()
  })
}
