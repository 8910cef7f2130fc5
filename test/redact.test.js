'use strict'
// src/redact.ts on its own, over the masking corpus
// (test/fixtures/redaction-corpus.json): every secret shape masked as
// expected and gone from the output, every harmless value left as it was.
const t = require('tap')
const { maskText, maskArgs, isSecretPath, isSecretKey, redactJson, MASK } = require('../dist/redact')
const { flattenConfig } = require('../dist/sections/configuration')
const corpus = require('./fixtures/redaction-corpus.json')

/** What flattenConfig shows for plain data when nothing is masked. */
function plainFlatten (value, path = '', out = {}) {
  if (Array.isArray(value)) {
    if (value.every(x => x === null || typeof x !== 'object')) out[path] = value.map(String).join(', ')
    else value.forEach((x, i) => plainFlatten(x, `${path}[${i}]`, out))
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) plainFlatten(v, path === '' ? k : `${path}.${k}`, out)
  } else {
    out[path] = String(value)
  }
  return out
}

function mask (entry) {
  if (entry.kind === 'text') return maskText(entry.input, [])
  if (entry.kind === 'args') return maskArgs(entry.input, [])
  return flattenConfig(entry.input, [])
}

t.test('the corpus is large enough', async t => {
  t.ok(corpus.secrets.length >= 150, `${corpus.secrets.length} secret shapes`)
  t.ok(corpus.harmless.length >= 150, `${corpus.harmless.length} harmless values`)
})

t.test('every secret shape is masked as expected', async t => {
  let masked = 0
  for (const entry of corpus.secrets) {
    const out = mask(entry)
    const leaked = entry.secret !== null && JSON.stringify(out).includes(entry.secret)
    const ok = !leaked && JSON.stringify(out) === JSON.stringify(entry.masked)
    if (ok) masked++
    else t.same(out, entry.masked, `${entry.what}${leaked ? ' (leaked)' : ''}`)
  }
  t.comment(`secrets masked: ${masked} of ${corpus.secrets.length} (${(100 * masked / corpus.secrets.length).toFixed(1)}%)`)
  t.equal(masked, corpus.secrets.length, '100% masked')
})

t.test('no harmless value is masked', async t => {
  let touched = 0
  for (const entry of corpus.harmless) {
    const out = typeof entry.input === 'string' ? maskText(entry.input, []) : flattenConfig(entry.input, [])
    const want = typeof entry.input === 'string' ? entry.input : plainFlatten(entry.input)
    if (JSON.stringify(out) !== JSON.stringify(want)) {
      touched++
      t.same(out, want, entry.what)
    }
  }
  t.comment(`harmless values masked: ${touched} of ${corpus.harmless.length}`)
  t.equal(touched, 0, '0 masked')
})

t.test('paths: a generic leaf is secret under a credential or service group only', async t => {
  for (const [groups, key] of [[['stripe'], 'key'], [['api'], 'key'], [['encryption'], 'key'], [[], 'stripeKey'],
    [['services', 'sendgrid', 'eu'], 'key'], [['twilio'], 'sid'], [['github', 'app'], 'id'], [[], 'STRIPE_KEY']]) {
    t.ok(isSecretPath(groups, key, []), `${[...groups, key].join('.')} is secret`)
  }
  for (const [groups, key] of [[['cache'], 'key'], [['user'], 'id'], [['order'], 'id'], [['table'], 'sortKey'],
    [['stripe'], 'currency'], [['api'], 'url'], [[], 'CACHE_KEY'], [['headers'], 'value']]) {
    t.notOk(isSecretPath(groups, key, []), `${[...groups, key].join('.')} is not secret`)
  }
  t.ok(isSecretPath(['db'], 'user', [/^db\.user$/]), 'secretKeys RegExps see the dotted path')
  t.ok(isSecretKey('merchantCode', ['merchantcode']), 'secretKeys strings: case-insensitive substrings')
  const g = /Code$/g
  t.ok(isSecretKey('merchantCode', [g]) && isSecretKey('merchantCode', [g]), 'a /g RegExp gives the same answer twice')
})

t.test('redactJson: user section content', async t => {
  const content = { stripe: { key: 'k1' }, note: 'deployed with npm_' + 'a'.repeat(36), list: [{ name: 'X-Api-Key', value: 'v1' }], plan: 'team' }
  t.same(redactJson(content, true, []), { stripe: { key: MASK }, note: `deployed with ${MASK}`, list: [{ name: 'X-Api-Key', value: MASK }], plan: 'team' })
  t.same(redactJson(content, false, []), { ...content, stripe: { key: MASK }, list: [{ name: 'X-Api-Key', value: MASK }] }, 'text off: paths still masked, strings as given')
  t.same(redactJson(JSON.parse('{"__proto__": {"password": "p"}}'), true, []), JSON.parse('{"__proto__": {"password": "***"}}'), '__proto__ stays a key')
})

t.test('short text: the quick path skips nothing maskable', async t => {
  t.equal(maskText('xoxb-1234567890', []), MASK, 'the shortest token shape (15 characters)')
  t.equal(maskText('pwd=x', []), `pwd=${MASK}`, 'a short pair')
  t.equal(maskText('--pass x', []), `--pass ${MASK}`, 'a short flag and value')
  t.equal(maskText('server.js', []), 'server.js')
})

t.test('stays fast on pathological input', async t => {
  // A bound, not a timing: quadratic behaviour would take minutes here.
  for (const s of ['password-'.repeat(1e5), 'a.'.repeat(5e5), 'http://'.repeat(1e5), 'token="'.repeat(1e5),
    'mysql '.repeat(1e5), 'redis-cli -a'.repeat(5e4), 'eyJ'.repeat(1e5), 'sk_live_'.repeat(1e5), '-u a:'.repeat(1e5), 'AAAA'.repeat(1e5)]) {
    t.type(maskText(s), 'string')
  }
})
