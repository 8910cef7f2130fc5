'use strict'
// Runs the gmr CLI as a user would; the report it prints is validated.
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { CLI } = require('./paths')
const { validateReportContent } = require('./validate')

/**
 * Runs gmr with args, killed if it outlives timeoutMs; resolves { code,
 * stdout, stderr, ms }. The report it printed (or wrote to --out) is
 * validated. `as`: run it as that user (setpriv), for cross-user tests.
 */
function runGmr (args, { timeoutMs = 20000, as = null } = {}) {
  const t0 = Date.now()
  const argv = [CLI, ...args]
  const [command, commandArgs] = as === null
    ? [process.execPath, argv]
    // Without the runner's NODE_OPTIONS: its hooks write files that user cannot.
    : ['setpriv', [`--reuid=${as}`, `--regid=${as}`, '--clear-groups', '--', '/usr/bin/env', '-u', 'NODE_OPTIONS', process.execPath, ...argv]]
  return new Promise((resolve, reject) => {
    execFile(command, commandArgs, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const r = { code: err ? (err.code ?? 'killed') : 0, stdout, stderr, ms: Date.now() - t0 }
      try {
        if (r.code === 0 && !args.includes('--list') && !args.includes('--help')) {
          const out = args.indexOf('--out')
          validateReportContent(out >= 0 ? fs.readFileSync(path.resolve(args[out + 1]), 'utf8') : stdout, `gmr ${args.join(' ')}`)
        }
      } catch (e) { return reject(e) }
      resolve(r)
    })
  })
}

module.exports = { runGmr }
