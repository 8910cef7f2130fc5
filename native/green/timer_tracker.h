// Pending JavaScript timers with their callbacks, for the Green Threads
// section when trackPromises is on. Node keeps its timers in JavaScript
// lists that nothing outside its internals can enumerate, but its timer code
// assigns `_onTimeout`, `_idleStart` and `_destroyed` on each timer:
// accessors on Timeout.prototype, installed on each JavaScript thread
// (workers that never loaded the library too), see those assignments and
// tell this table, so the watchdog can list the timers also while the
// thread is stuck. Each value still lives on the timer, under a symbol.
// Per isolate, bounded.
#pragma once

#include <v8.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gmr {

struct TimerInfo {
  std::string function;  // the callback's name, "" for an anonymous one
  std::string file;
  int line = 0;          // where the callback starts, 1-based
  int column = 0;
  int64_t due_in_ms = 0;   // negative: overdue
  uint64_t after_ms = 0;   // the delay it was set with
  bool repeat = false;     // setInterval
  bool armed = false;      // in Node's lists (false: being run now, or refreshed later)
};

struct TimerSummary {
  bool tracked = false;
  std::vector<TimerInfo> timers;  // soonest first
  size_t more = 0;                // past max
  uint64_t untracked = 0;         // past the table's capacity
};

// On the isolate's thread, in a context of its node environment: follows
// the promise tracking switch (the accessors, once installed, stay: timers
// keep their values in them; off, they stop reporting).
void FollowTimerTracking(v8::Isolate* isolate);

// Tracking is on but the accessors are not installed on `isolate` yet (a
// worker met while bootstrapping): its thread is to be asked again.
bool TimerTrackingPending(v8::Isolate* isolate);

// Watchdog side.
TimerSummary SummarizeTimers(v8::Isolate* isolate, size_t max);
// On the isolate's thread, before it is disposed.
void ForgetTimers(v8::Isolate* isolate);

}  // namespace gmr
