'use strict'
// A small HTTP service with two worker threads. After a first request it
// computes something expensive on the main thread and its event loop stays
// stuck: nothing written in JavaScript can answer a signal now.
const http = require('node:http')
const { Worker } = require('node:worker_threads')
const gmr = require('..')

gmr.setupAutorun({ product: 'demo-shop', vendor: 'guru-meditation', version: '1.0.0' }, {
  serviceName: 'demo-shop',
  conf: {
    http: { port: 0, host: '127.0.0.1' },
    database: { url: 'postgres://shop:s3cret-pass@db.internal:5432/shop', poolSize: 10 },
    payments: { apiKey: 'sk_live_demo_1234567890', timeoutMs: 2500 }
  }
})
gmr.registerSection('Orders', () => ({ open: 12, failedToday: 1 }))

// Workers that never load the library: one waits for messages, one computes.
const idle = new Worker('require("node:worker_threads").parentPort.on("message", () => {})', { eval: true })
const busy = new Worker(`
  function crunchNumbers () { let x = 0; for (;;) x = (x * 31 + 7) % 1000003 }
  crunchNumbers()`, { eval: true })
idle.unref()
busy.unref()

function priceCatalogue (items) {
  // The bug: an accidental infinite loop in a pricing rule.
  let total = 0
  for (let i = 0; i < items; i = (i + 1) % items) total += i
  return total
}

const server = http.createServer((req, res) => {
  console.log(`demo-shop: ${req.method} ${req.url}: pricing the catalogue; the event loop is now stuck`)
  res.end(String(priceCatalogue(1000)))
})
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address()
  console.log(`demo-shop: listening on 127.0.0.1:${port} (pid ${process.pid})`)
  http.get(`http://127.0.0.1:${port}/price`).on('error', () => {})
})
