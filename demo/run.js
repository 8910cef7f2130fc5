'use strict'
// The demo: starts a small service with worker threads, gets its event loop
// stuck, sends it SIGUSR2 and prints the Guru Meditation Report it writes.
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gmr-demo-'))
const service = spawn(process.execPath, [path.join(__dirname, 'service.js')], {
  env: { ...process.env, GMR_LOG_DIR: logDir },
  stdio: ['ignore', 'pipe', 'inherit']
})
const timeout = setTimeout(() => fail('the demo service did not report in 30 s'), 30000)

function cleanup () {
  if (service.exitCode === null) service.kill('SIGKILL')
  fs.rmSync(logDir, { recursive: true, force: true })
}

function fail (message) {
  console.error(`demo: ${message}`)
  cleanup()
  process.exit(1)
}

let output = ''
service.stdout.on('data', chunk => {
  output += chunk
  process.stdout.write(chunk)
  if (!output.includes('event loop is now stuck') || output.includes('sent')) return
  output += 'sent'
  // Give the loop a moment to be well inside the stuck call.
  setTimeout(() => {
    console.log(`\ndemo: kill -USR2 ${service.pid}\n`)
    process.kill(service.pid, 'SIGUSR2')
    waitForReport()
  }, 300)
})
service.on('exit', code => fail(`the service exited (${code}) before reporting`))

function waitForReport () {
  const poll = setInterval(() => {
    const file = fs.readdirSync(logDir).find(f => /^[^.].*_gurumeditation_\d{14}$/.test(f))
    if (!file) return
    clearInterval(poll)
    clearTimeout(timeout)
    service.removeAllListeners('exit')
    process.stdout.write(fs.readFileSync(path.join(logDir, file), 'utf8'))
    console.log(`\ndemo: the report above was written to ${path.join(logDir, file)} while the service's event loop was stuck.`)
    cleanup()
  }, 50)
}
