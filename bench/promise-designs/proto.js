'use strict'
// Preload: PROTO=<mode> node -r ./proto.js app.js
// A shared slot table the native watchdog could read without JS:
//   times  Float64Array[SLOTS]  creation time (0 = free)
//   tags   Int32Array[SLOTS]    site id (0 = unknown)
//   clock  Float64Array[1]      coarse clock, written by the watchdog thread (here: a worker-free stand-in)
//   sites  Uint8Array           interned site strings, append-only "id\tsite\n"
const { promiseHooks } = require('node:v8')
const MODE = process.env.PROTO || 'none'
const N = Number(process.env.PROTO_N || 64)
const SLOT_BITS = 16
const SLOTS = 1 << SLOT_BITS
const SLOT_MASK = SLOTS - 1
const sab = new SharedArrayBuffer(SLOTS * 8 + SLOTS * 4 + 8 + (1 << 20))
const times = new Float64Array(sab, 0, SLOTS)
const tags = new Int32Array(sab, SLOTS * 8, SLOTS)
const clock = new Float64Array(sab, SLOTS * 12, 1)
const siteText = new Uint8Array(sab, SLOTS * 12 + 8)
let siteTextLen = 0
clock[0] = Date.now()
const freeList = new Int32Array(SLOTS)
let freeTop = 0
for (let i = SLOTS - 1; i >= 1; i--) freeList[freeTop++] = i // slot 0 = overflow
let overflow = 0
const kTag = Symbol('gmrSlot')
const wm = new WeakMap()
const { performance } = require('node:perf_hooks')

// Site interning: string -> id, text appended to shared memory.
const siteIds = new Map()
const siteNames = ['unknown']
const enc = new TextEncoder()
function intern (s) {
  let id = siteIds.get(s)
  if (id === undefined) {
    id = siteNames.length
    if (id >= 32767) return 0
    siteNames.push(s)
    siteIds.set(s, id)
    const r = enc.encodeInto(`${id}\t${s}\n`, siteText.subarray(siteTextLen))
    siteTextLen += r.written
  }
  return id
}
const holder = {}
let skipFn = null
function siteNow () {
  const lim = Error.stackTraceLimit
  Error.stackTraceLimit = 2
  Error.captureStackTrace(holder, skipFn)
  Error.stackTraceLimit = lim
  const s = holder.stack
  // "Error\n    at fn (file:line:col)" -> "fn (file:line)"; skip builtin frames (new Promise, Promise.then)
  let i = s.indexOf('at ')
  let t = i < 0 ? '?' : s.slice(i + 3)
  let nl = t.indexOf('\n')
  if (nl > 0 && t.slice(0, nl).endsWith('(<anonymous>)')) t = t.slice(t.indexOf('at ', nl) + 3)
  nl = t.indexOf('\n'); if (nl > 0) t = t.slice(0, nl)
  const c = t.lastIndexOf(':')
  if (c > 0 && /\d\)?$/.test(t)) t = t.slice(0, c) + (t.endsWith(')') ? ')' : '')
  return intern(t)
}

function alloc () {
  if (freeTop === 0) { overflow++; return 0 }
  return freeList[--freeTop]
}

let count = 0
const hooks = {
  empty: {
    init (p, parent) {},
    settled (p) {}
  },
  // B: slot on the promise by symbol, time performance.now()
  bSymNow: {
    init (p) { const s = alloc(); times[s] = performance.now() + 1; p[kTag] = s },
    settled (p) { const s = p[kTag]; if (s !== undefined) { times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  // B: slot by symbol, coarse clock from shared memory
  bSym: {
    init (p) { const s = alloc(); times[s] = clock[0]; p[kTag] = s },
    settled (p) { const s = p[kTag]; if (s !== undefined) { times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  // B: slot in a WeakMap, coarse clock
  bWm: {
    init (p) { const s = alloc(); times[s] = clock[0]; wm.set(p, s) },
    settled (p) { const s = wm.get(p); if (s !== undefined) { times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  // C: site for every promise (captureStackTrace limit 1 + format + intern)
  c: {
    init (p) { const s = alloc(); times[s] = clock[0]; tags[s] = siteNow(); p[kTag] = s },
    settled (p) { const s = p[kTag]; if (s !== undefined) { times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  // D: 1 in N sampled sites, others inherit the parent's site (tag = slot | site << 16)
  d: {
    init (p, parent) {
      const s = alloc()
      times[s] = clock[0]
      let site = 0
      if (parent !== undefined) { const t = parent[kTag]; if (t !== undefined) site = t >>> SLOT_BITS }
      if (site === 0 && ++count === N) { count = 0; site = siteNow() }
      tags[s] = site
      p[kTag] = s | (site << SLOT_BITS)
    },
    settled (p) { const t = p[kTag]; if (t !== undefined) { const s = t & SLOT_MASK; times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  // E1: D but sampling only root promises (no parent: async function results, new Promise)
  //     derived ones (then/await) always inherit; roots sampled 1 in N
  // (same code as d; d already only samples when nothing inherited)
  // E2: lazy site: raw structured stack (not formatted) kept per slot in a JS array;
  //     a sweep (every second, when the thread is free) formats the ones older than 1 s.
  eLazy: {
    init (p) {
      const s = alloc(); times[s] = clock[0]; p[kTag] = s
      const o = {}
      const lim = Error.stackTraceLimit; Error.stackTraceLimit = 2
      Error.captureStackTrace(o, skipFn)
      Error.stackTraceLimit = lim
      raw[s] = o
    },
    settled (p) { const s = p[kTag]; if (s !== undefined) { times[s] = 0; raw[s] = undefined; if (s) freeList[freeTop++] = s } }
  },
  // E4: D, but the sample keeps the raw structured stack; formatted later by the sweep
  dLazy: {
    init (p, parent) {
      const s = alloc()
      times[s] = clock[0]
      let site = 0
      if (parent !== undefined) { const t = parent[kTag]; if (t !== undefined) site = t >>> SLOT_BITS }
      if (site === 0 && ++count === N) {
        count = 0
        const o = {}
        const lim = Error.stackTraceLimit; Error.stackTraceLimit = 2
        Error.captureStackTrace(o, skipFn)
        Error.stackTraceLimit = lim
        site = 32767 // "pending format" marker; real design: a lazily formatted id
        raw[s] = o
      }
      tags[s] = site
      p[kTag] = s | (site << SLOT_BITS)
    },
    settled (p) { const t = p[kTag]; if (t !== undefined) { const s = t & SLOT_MASK; times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  // E5: B + a native one-frame stack sample per promise (regular API callback;
  //     the native array keeps the creating frame's code address, as the addon does)
  nSample: {
    init (p) { const s = alloc(); times[s] = clock[0]; p[kTag] = s; native.sample(s) },
    settled (p) { const s = p[kTag]; if (s !== undefined) { times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  nNoop: {
    init (p) { const s = alloc(); times[s] = clock[0]; p[kTag] = s; native.noop(s) },
    settled (p) { const s = p[kTag]; if (s !== undefined) { times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  initOnly: { init (p, parent) {} },
  settledOnly: { settled (p) {} },
  // B with a ring cursor instead of a free list (skips slots still live), Int32 times
  bRing: {
    init (p) {
      let s = cursor
      for (let k = 0; k < 8 && times32[s] !== 0; k++) s = (s + 1) & SLOT_MASK
      if (times32[s] !== 0 || s === 0) { overflow++; s = 0 }
      else cursor = (s + 1) & SLOT_MASK
      times32[s] = clock32[0]
      p[kTag] = s
    },
    settled (p) { const s = p[kTag]; if (s !== undefined) times32[s] = 0 }
  },
  // E6: adaptive: B, plus full sites while the watchdog sets ctl[0] (e.g. pending count or oldest age over a threshold)
  eFlag: {
    init (p) { const s = alloc(); times[s] = clock[0]; p[kTag] = s; if (ctl[0] !== 0) tags[s] = siteNow() },
    settled (p) { const s = p[kTag]; if (s !== undefined) { times[s] = 0; if (s) freeList[freeTop++] = s } }
  },
  // E3: D with parent inheritance but sampling by time: first root promise after each clock tick
  eTick: {
    init (p, parent) {
      const s = alloc()
      const now = clock[0]
      times[s] = now
      let site = 0
      if (parent !== undefined) { const t = parent[kTag]; if (t !== undefined) site = t >>> SLOT_BITS }
      if (site === 0 && now !== lastTick) { lastTick = now; site = siteNow() }
      tags[s] = site
      p[kTag] = s | (site << SLOT_BITS)
    },
    settled (p) { const t = p[kTag]; if (t !== undefined) { const s = t & SLOT_MASK; times[s] = 0; if (s) freeList[freeTop++] = s } }
  }
}
const raw = new Array(SLOTS)
let cursor = 1
const sab2 = new SharedArrayBuffer(SLOTS * 4 + 16)
const times32 = new Int32Array(sab2, 0, SLOTS)
const clock32 = new Int32Array(sab2, SLOTS * 4, 1); clock32[0] = 1
const ctl = new Int32Array(sab2, SLOTS * 4 + 4, 1); ctl[0] = Number(process.env.PROTO_FLAG || 0)
const native = MODE.startsWith('n') && MODE !== 'none' ? require('./sampler/build/Release/sampler.node') : null
let lastTick = -1

// Ground truth for attribution: the full site of every promise, kept aside (EVAL=1).
const truth = new Array(SLOTS)
if (process.env.EVAL) {
  const h = hooks[MODE]
  const inner = h.init
  const wrapped = function (p, parent) {
    inner(p, parent)
    const t = p[kTag]
    const s = t === undefined ? wm.get(p) & SLOT_MASK : t & SLOT_MASK
    truth[s] = siteNames[siteNow(wrapped)]
  }
  h.init = wrapped
}
if (hooks[MODE]) skipFn = hooks[MODE].init

// Coarse clock stand-in: in the addon the watchdog thread writes it. Here a
// worker-free interval that doesn't keep the loop alive.
if (MODE !== 'none') setInterval(() => { clock[0] = Date.now() }, 10).unref()

if (hooks[MODE]) promiseHooks.createHook(hooks[MODE])

module.exports = { native, times, tags, siteNames, truth, raw, intern, SLOTS, getOverflow: () => overflow, MODE }
globalThis.__proto_tracker = module.exports
