// JavaScript timers with their callbacks, for Green Threads (with
// trackPromises). Node keeps timers in internal lists nothing else can
// enumerate, but its Timeout constructor and timer lists assign
// `_onTimeout`, `_idleStart` and `_destroyed` on each timer: accessors on
// Timeout.prototype see those assignments and tell the native table
// (native/green/timer_tracker.cc), which the watchdog reads also while this
// thread is stuck. Each value still lives on the timer, under a symbol.
import type { Addon } from '../native'

const CALLBACK = Symbol('guru-meditation onTimeout')
const START = Symbol('guru-meditation idleStart')
const DESTROYED = Symbol('guru-meditation destroyed')

interface TimeoutLike {
  _idleTimeout: number
  _repeat: number | null
  [CALLBACK]?: unknown
  [START]?: number
  [DESTROYED]?: boolean
}

let installed = false
let on = false

/** Starts or stops telling the native table; the accessors, once there, stay (timers keep their values in them). */
export function trackTimers (native: Addon, enabled: boolean): void {
  on = enabled
  if (!enabled || installed) return
  const probe = setTimeout(() => {}, 0)
  const proto = Object.getPrototypeOf(probe) as object
  clearTimeout(probe)
  installed = true
  Object.defineProperty(proto, '_onTimeout', {
    configurable: true,
    get (this: TimeoutLike) { return this[CALLBACK] },
    set (this: TimeoutLike, value: unknown) {
      this[CALLBACK] = value
      if (on && typeof value === 'function') native.timerCreated(this, value)
    }
  })
  Object.defineProperty(proto, '_idleStart', {
    configurable: true,
    get (this: TimeoutLike) { return this[START] },
    set (this: TimeoutLike, value: number) {
      this[START] = value
      if (on && typeof value === 'number') native.timerArmed(this, value, this._idleTimeout, this._repeat !== null)
    }
  })
  Object.defineProperty(proto, '_destroyed', {
    configurable: true,
    get (this: TimeoutLike) { return this[DESTROYED] },
    set (this: TimeoutLike, value: boolean) {
      this[DESTROYED] = value
      if (on && value === true) native.timerDone(this)
    }
  })
}
