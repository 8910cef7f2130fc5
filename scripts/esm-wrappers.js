// Writes the ESM entry points next to the CommonJS build: thin re-exports,
// so there is one copy of the library's state whichever way it is loaded.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const dist = path.join(__dirname, '..', 'dist')
const names = Object.keys(require(path.join(dist, 'index.js'))).filter(n => n !== 'default' && n !== '__esModule')
fs.writeFileSync(path.join(dist, 'index.mjs'),
  `import lib from './index.js'\nexport const { ${names.join(', ')} } = lib\nexport default lib\n`)
fs.writeFileSync(path.join(dist, 'register.mjs'), "import './register.js'\n")
