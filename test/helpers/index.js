'use strict'
// The tests' shared tools, one module per job:
//   paths.js      the package, the fixtures, the CLI
//   processes.js  spawning Node (always killed), /proc, signals, waiting
//   reports.js    report files: waited for, read and validated once
//   gmr.js        the gmr CLI
//   validate.js   the one report validator (the README's JSON schema, the text view)
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, FIXTURES, CLI } = require('./paths')
const processes = require('./processes')
const reports = require('./reports')
const { runGmr } = require('./gmr')
const { validateReport, validateReportContent } = require('./validate')

/** The 1-based line of the fixture source that holds `marker`. */
function lineOf (file, marker) {
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const i = lines.findIndex(l => l.includes(marker))
  if (i < 0) throw new Error(`${marker} not in ${file}`)
  return i + 1
}

/** The test service (test/fixtures/app.js) and the line its stuck loop is on. */
const APP = path.join(FIXTURES, 'app.js')
const SPIN_LINE = lineOf(APP, 'SPIN-LINE')

module.exports = { ROOT, FIXTURES, CLI, APP, SPIN_LINE, lineOf, runGmr, validateReport, validateReportContent, ...processes, ...reports }
