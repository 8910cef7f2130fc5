'use strict'
// node bench.js [nodeBin...]  — medians of RUNS interleaved runs of chain.js per variant.
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const RUNS = Number(process.env.RUNS || 5)
const bins = process.argv.slice(2).length ? process.argv.slice(2) : [process.execPath]
const P = path.join(__dirname, 'proto.js')
const CHAIN = path.join(__dirname, 'chain.js')
const REG = '/work/main/dist/register.js'
const variants = {
  baseline: { args: [CHAIN] },
  'A-off': { args: ['-r', REG, CHAIN] },
  'A-on': { args: ['-r', REG, CHAIN], env: { GMR_TRACK_PROMISES: '1' } },
  'empty-hooks': { args: ['-r', P, CHAIN], env: { PROTO: 'empty' } },
  'B-sym-perfnow': { args: ['-r', P, CHAIN], env: { PROTO: 'bSymNow' } },
  'B-sym-clock': { args: ['-r', P, CHAIN], env: { PROTO: 'bSym' } },
  'B-weakmap': { args: ['-r', P, CHAIN], env: { PROTO: 'bWm' } },
  'C-all-sites': { args: ['-r', P, CHAIN], env: { PROTO: 'c' } },
  'D-16': { args: ['-r', P, CHAIN], env: { PROTO: 'd', PROTO_N: '16' } },
  'D-64': { args: ['-r', P, CHAIN], env: { PROTO: 'd', PROTO_N: '64' } },
  'D-256': { args: ['-r', P, CHAIN], env: { PROTO: 'd', PROTO_N: '256' } },
  'D-64-lazy': { args: ['-r', P, CHAIN], env: { PROTO: 'dLazy', PROTO_N: '64' } },
  'E-tick(10ms)': { args: ['-r', P, CHAIN], env: { PROTO: 'eTick' } },
  'E-lazy-all': { args: ['-r', P, CHAIN], env: { PROTO: 'eLazy' } },
  'init-only-empty': { args: ['-r', P, CHAIN], env: { PROTO: 'initOnly' } },
  'settled-only-empty': { args: ['-r', P, CHAIN], env: { PROTO: 'settledOnly' } },
  'B-ring-int32': { args: ['-r', P, CHAIN], env: { PROTO: 'bRing' } },
  'E-flag-off': { args: ['-r', P, CHAIN], env: { PROTO: 'eFlag' } },
  'E-native-noop': { args: ['-r', P, CHAIN], env: { PROTO: 'nNoop' } },
  'E-native-sample': { args: ['-r', P, CHAIN], env: { PROTO: 'nSample' } }
}
const only = process.env.ONLY ? process.env.ONLY.split(',') : null
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
for (const bin of bins) {
  const ver = spawnSync(bin, ['--version']).stdout.toString().trim()
  const res = {}
  const names = Object.keys(variants).filter(n => !only || only.includes(n) || n === 'baseline')
  for (let r = 0; r < RUNS; r++) {
    const order = r % 2 ? [...names].reverse() : names
    for (const n of order) {
      const v = variants[n]
      const out = spawnSync(bin, v.args, { env: { ...process.env, ...v.env }, timeout: 120000 })
      const m = /FIGURES (.*)/.exec(out.stdout.toString())
      ;(res[n] ||= []).push(m ? JSON.parse(m[1]) : { ms: NaN, cpu: NaN })
      if (!m && r === 0) console.error(n, 'failed:', out.stderr.toString().split('\n').slice(0, 3).join(' | '))
    }
  }
  const get = (n, k) => res[n].map(f => f[k])
  const bw = median(get('baseline', 'ms')); const bc = median(get('baseline', 'cpu'))
  console.log(`\n${ver} (${bin}) — median of ${RUNS} interleaved runs, await chain 1e6; cpu = process CPU time during the chain`)
  console.log(`${'variant'.padEnd(16)} ${'cpu ms'.padStart(8)} ${'x cpu'.padStart(7)} ${'wall ms'.padStart(8)} ${'x wall'.padStart(7)}   cpu runs`)
  for (const n of names) {
    const c = median(get(n, 'cpu')); const w = median(get(n, 'ms'))
    console.log(`${n.padEnd(16)} ${c.toFixed(0).padStart(8)} ${('x' + (c / bc).toFixed(2)).padStart(7)} ${w.toFixed(0).padStart(8)} ${('x' + (w / bw).toFixed(2)).padStart(7)}   [${get(n, 'cpu').map(x => x.toFixed(0)).join(' ')}]`)
  }
}
