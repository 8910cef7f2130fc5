// Bundles each entry point of dist/ (tsc's output) into one file, in place.
// A require of the library then reads one file, not twenty: set-up is
// quicker, and the module resolution it no longer does was enough to make
// Node's path.normalize hot and page in V8's optimizing compiler (3.5 MB of
// the binary's code) in a service that had not needed it yet (bench: RSS at
// set-up). The reporter environment loads its entry in one read too. The
// other files stay: their .d.ts are the types, and tests load single modules.
'use strict'
const path = require('node:path')
const esbuild = require('esbuild')

const dist = path.join(__dirname, '..', 'dist')
// register.js stays as tsc wrote it: it requires index.js, one copy of the
// library's state whichever way it is loaded.
for (const entry of ['index', 'reporter-env', 'cli']) {
  const file = path.join(dist, `${entry}.js`)
  esbuild.buildSync({
    entryPoints: [file],
    outfile: file,
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Resolved at run time from the package's root (src/native.ts).
    external: ['node-gyp-build'],
    logLevel: 'warning'
  })
}
