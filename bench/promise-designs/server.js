const http = require('node:http')
const tick = () => new Promise(resolve => setImmediate(resolve))
async function handle (req, res) { await tick(); await null; res.end('ok') }
http.createServer((req, res) => { handle(req, res) }).listen(0, '127.0.0.1', function () { console.log('port ' + this.address().port) })
