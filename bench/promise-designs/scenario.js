'use strict'
// Realistic pending set: 1000 orders, 14 of them stuck on `await approval()`,
// plus an HTTP server with an async handler, 300 requests (20 stuck on a lock).
// Run with EVAL=1 PROTO=<mode>: compares each pending slot's recorded site with
// the true creation site (full capture, kept aside).
const http = require('node:http')
const T = globalThis.__proto_tracker
const tick = () => new Promise(resolve => setImmediate(resolve))
const never = () => new Promise(() => {})
async function approval (id) { await tick(); return never() }
async function lookup (i) { await null; return i * 2 }
async function placeOrder (i, stuck) {
  const x = await lookup(i)
  if (stuck) await approval(i)
  await tick()
  return x
}
async function acquireLock () { return never() }
async function handle (req, res) {
  await tick(); await null
  if (req.url === '/stuck') await acquireLock()
  res.end('ok')
}
const stuckOrders = new Set(Array.from({ length: 14 }, (_, k) => 3 + k * 71))
async function main () {
  const orders = []
  for (let i = 0; i < 1000; i++) orders.push(placeOrder(i, stuckOrders.has(i)))
  const server = http.createServer((req, res) => { handle(req, res) })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = server.address().port
  const agent = new http.Agent({ keepAlive: true, maxSockets: 40 })
  const reqs = []
  for (let i = 0; i < 300; i++) {
    const stuck = i % 15 === 7
    const p = new Promise(resolve => {
      const r = http.get({ host: '127.0.0.1', port, path: stuck ? '/stuck' : '/', agent }, res => { res.resume(); res.on('end', resolve) })
      r.on('error', resolve)
      if (stuck) setTimeout(resolve, 300) // the client gives up; the handler stays stuck
    })
    reqs.push(p)
  }
  await Promise.all(reqs)
  await new Promise(resolve => setTimeout(resolve, 100))
  report()
  agent.destroy(); server.closeAllConnections(); server.close()
  process.exit(0)
}
const noCol = s => s
function report () {
  let pending = 0; let exact = 0; let unknown = 0; let wrong = 0
  const byTruth = new Map(); const bySite = new Map()
  for (let s = 1; s < T.SLOTS; s++) {
    if (T.times[s] === 0) continue
    pending++
    const truth = noCol(T.truth[s])
    const site = T.native ? 'pc:' + T.native.siteOf(s).toString(16) : T.MODE === 'eLazy' ? noCol(T.raw[s] && firstFrame(T.raw[s].stack)) : T.tags[s] === 0 || T.tags[s] === 32767 ? null : noCol(T.siteNames[T.tags[s]])
    byTruth.set(truth, (byTruth.get(truth) || 0) + 1)
    const key = site || 'unknown'
    bySite.set(key, (bySite.get(key) || 0) + 1)
    if (!site) unknown++
    else if (site === truth) exact++
    else wrong++
  }
  if (T.native) {
    const groups = new Map()
    for (let s = 1; s < T.SLOTS; s++) {
      if (T.times[s] === 0) continue
      const k = T.native.siteOf(s); const g = groups.get(k) || new Map(); groups.set(k, g)
      g.set(T.truth[s], (g.get(T.truth[s]) || 0) + 1)
    }
    let pure = 0
    for (const g of groups.values()) pure += Math.max(...g.values())
    console.log('  native pc groups:', groups.size, 'purity (share of pending whose pc group is one true site):', (pure / pending).toFixed(3))
    for (const [k, g] of groups) console.log('   ', k.toString(16), [...g].map(([t, n]) => n + ' x ' + t).join(' | '))
  }
  const top = m => [...m].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${v} x ${k}`)
  const key = re => [...bySite].filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0)
  console.log(JSON.stringify({ mode: T.MODE, N: process.env.PROTO_N, pending, exact, unknown, wrong, overflow: T.getOverflow(), approvalShown: key(/^approval /) + '/14', acquireLockShown: key(/^acquireLock /) + '/20' }))
  console.log('  truth :', top(byTruth).join(' | '))
  console.log('  report:', top(bySite).join(' | '))
}
function firstFrame (st) { const fr = st.split('\n').slice(1).map(l => l.trim().slice(3)); const f = fr.find(l => !l.endsWith('(<anonymous>)')) || fr[0]; return f && f.replace(/:\d+(\)?)$/, '$1') }
main()
