'use strict'
// node http.js [nodeBin] — req/s medians of RUNS rounds (interleaved order), ASYNC_SERVER handler.
const { spawn } = require('node:child_process')
const path = require('node:path')
const autocannon = require('/work/main/node_modules/autocannon')
const RUNS = Number(process.env.RUNS || 5)
const bin = process.argv[2] || process.execPath
const P = path.join(__dirname, 'proto.js')
const S = path.join(__dirname, 'server.js')
const REG = '/work/main/dist/register.js'
const variants = {
  baseline: { args: [S] },
  'A-off': { args: ['-r', REG, S] },
  'A-on': { args: ['-r', REG, S], env: { GMR_TRACK_PROMISES: '1' } },
  'B-sym-clock': { args: ['-r', P, S], env: { PROTO: 'bSym' } },
  'D-256': { args: ['-r', P, S], env: { PROTO: 'd', PROTO_N: '256' } }
}
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
async function measure (v) {
  const child = spawn(bin, v.args, { env: { ...process.env, ...v.env }, stdio: ['ignore', 'pipe', 'inherit'] })
  const kill = setTimeout(() => child.kill('SIGKILL'), 60000)
  try {
    const port = await new Promise((resolve, reject) => {
      let buf = ''
      child.stdout.on('data', d => { buf += d; const m = /port (\d+)/.exec(buf); if (m) resolve(Number(m[1])) })
      child.on('exit', () => reject(new Error('server exited')))
    })
    const url = `http://127.0.0.1:${port}/`
    await autocannon({ url, connections: 10, duration: 1 })
    const r = await autocannon({ url, connections: 10, duration: 5 })
    if (r.errors || r.non2xx) throw new Error('errors')
    return r.requests.average
  } finally { clearTimeout(kill); child.kill('SIGKILL') }
}
;(async () => {
  const res = {}
  const names = Object.keys(variants).filter(n => !process.env.ONLY || process.env.ONLY.split(',').includes(n))
  for (let r = 0; r < RUNS; r++) for (const n of (r % 2 ? [...names].reverse() : names)) (res[n] ||= []).push(await measure(variants[n]))
  const base = median(res.baseline)
  console.log(`${bin} HTTP async handler, req/s, median of ${RUNS}`)
  for (const n of names) console.log(`${n.padEnd(14)} ${median(res[n]).toFixed(0).padStart(7)}  ratio ${(median(res[n]) / base).toFixed(3)}  [${res[n].map(x => x.toFixed(0)).join(' ')}]`)
  for (const n of names) if (n !== 'baseline') { const pr = res[n].map((x, i) => x / res.baseline[i]); console.log(`${n} paired ratio median ${median(pr).toFixed(3)} [${pr.map(x => x.toFixed(2)).join(' ')}]`) }
  if (res['A-off']) console.log(`A on/off ${(median(res['A-on']) / median(res['A-off'])).toFixed(3)}`)
})()
