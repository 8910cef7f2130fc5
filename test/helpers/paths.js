'use strict'
// Where things are: the package, the fixtures, the CLI, the test service.
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')
const FIXTURES = path.join(ROOT, 'test', 'fixtures')
const CLI = path.join(ROOT, 'dist', 'cli.js')

module.exports = { ROOT, FIXTURES, CLI }
