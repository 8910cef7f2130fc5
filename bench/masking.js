'use strict'
// The cost of masking at report time: a configuration of 2,000 entries
// (values from the masking corpus, secrets and harmless, with realistic
// keys) flattened and masked, and 2,000 free-text values masked alone.
// Target: at most 20 ms for 2,000 entries. `node bench/masking.js` after
// `npm run build:ts`; prints the median and the worst of 50 runs.
const { flattenConfig } = require('../dist/sections/configuration')
const { maskText } = require('../dist/redact')
const corpus = require('../test/fixtures/redaction-corpus.json')

const texts = [
  ...corpus.secrets.filter(e => e.kind === 'text').map(e => e.input),
  ...corpus.harmless.filter(e => typeof e.input === 'string').map(e => e.input)
]
const KEYS = ['host', 'port', 'url', 'note', 'key', 'value', 'id', 'password', 'timeout', 'region', 'token', 'path']
const GROUPS = ['database', 'cache', 'stripe', 'api', 'queue', 'http', 'features', 'aws', 'mail', 'users']
const conf = {}
let n = 0
for (let g = 0; n < 2000; g++) {
  const group = conf[`${GROUPS[g % GROUPS.length]}${Math.floor(g / GROUPS.length)}`] = {}
  for (let k = 0; k < 20 && n < 2000; k++, n++) {
    group[`${KEYS[k % KEYS.length]}${k}`] = n % 3 === 0 ? n : texts[n % texts.length]
  }
}
const strings = Array.from({ length: 2000 }, (_, i) => texts[i % texts.length])

function measure (what, fn) {
  fn() // the first run compiles the patterns
  const times = []
  for (let i = 0; i < 50; i++) {
    const start = process.hrtime.bigint()
    fn()
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  times.sort((a, b) => a - b)
  console.log(`${what}: median ${times[25].toFixed(2)} ms, worst ${times[49].toFixed(2)} ms (50 runs)`)
}

const entries = Object.keys(flattenConfig(conf)).length
measure(`flattenConfig, ${entries} entries`, () => flattenConfig(conf))
measure(`maskText, ${strings.length} strings`, () => { for (const s of strings) maskText(s) })
