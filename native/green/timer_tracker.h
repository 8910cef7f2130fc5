// Pending JavaScript timers with their callbacks, for the Green Threads
// section when trackPromises is on. Node keeps its timers in JavaScript
// lists that nothing outside its internals can enumerate; the library's
// accessors on Timeout.prototype (src/track/timers.ts) tell this
// table when a timer is created, armed and done, so the watchdog can list
// them also while the thread is stuck. Per isolate, bounded.
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

// On the timer's thread, from the accessors: a Timeout was created with its
// callback, (re)armed at start_ms (libuv's clock) for after_ms, or is done.
void TimerCreated(v8::Isolate* isolate, v8::Local<v8::Object> timeout, v8::Local<v8::Function> callback);
void TimerArmed(v8::Isolate* isolate, v8::Local<v8::Object> timeout, double start_ms, double after_ms, bool repeat);
void TimerDone(v8::Isolate* isolate, v8::Local<v8::Object> timeout);

// Watchdog side.
TimerSummary SummarizeTimers(v8::Isolate* isolate, size_t max);
// On the isolate's thread, before it is disposed.
void ForgetTimers(v8::Isolate* isolate);

}  // namespace gmr
