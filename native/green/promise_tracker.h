// Pending promises, per JavaScript thread, for the Green Threads section
// (the trackPromises option), readable by the watchdog also while the thread
// is stuck and runs no JavaScript.
//
// Each thread's own context gets a JavaScript hook pair through Node's
// `v8.promiseHooks` (init, settled), which composes with Node's own users of
// V8's per-context hooks (async_hooks, AsyncLocalStorage). The hooks keep a
// slot table in a SharedArrayBuffer whose backing store the native side
// holds (so the watchdog reads it after the thread or its isolate is gone,
// and it is never freed under a reader): a new promise takes a free slot and
// stamps it with libuv's loop time (the start of the loop turn that runs it:
// a typed-array view of uv_loop_t::time, no clock call per promise, nothing
// ticking while idle); its settling frees the slot. The slot's index lives on
// the promise under a symbol. Memory is fixed: past kPromiseSlots pending
// promises, new ones are only counted. A promise the GC collects without
// ever settling stays: whatever awaited it will never resume.
//
// Mode 'sites' adds, through the same init hook, a native two-frame V8 stack
// sample per promise: the code addresses of the frames that created it,
// named from the code map at report time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v8 {
class Isolate;
}

namespace gmr {

enum class PromiseTracking : int { kOff = 0, kCounts = 1, kSites = 2 };

// 65,536 pending promises per thread: 256 KiB of stamps and a 128 KiB free
// list, plus 1 MiB of sites in mode 'sites' (pages touched as slots are).
constexpr uint32_t kPromiseSlots = 1 << 16;

// The process-wide switch (off by default). On: each isolate installs its
// hooks on its own thread (FollowPromiseTracking, see isolates/switches.cc).
void SetPromiseTracking(PromiseTracking mode);
PromiseTracking PromiseTrackingMode();
inline bool PromiseTrackingEnabled() { return PromiseTrackingMode() != PromiseTracking::kOff; }

// On the isolate's thread, in a context of its Node environment: installs,
// changes or removes its hooks to follow the switch.
void FollowPromiseTracking(v8::Isolate* isolate);
// The switch is not followed yet on `isolate` (no context of its own was
// current: a worker still bootstrapping): its thread is to be asked again.
bool PromiseTrackingPending(v8::Isolate* isolate);
// On the isolate's thread, before it is disposed (no JavaScript runs).
void ForgetPromises(v8::Isolate* isolate);

struct PromiseGroup {
  std::string function;  // "" when no JavaScript frame created it (Node's internals), or no site
  std::string file;
  int line = 0;          // the function's start line, from the code map
  int column = 0;
  uint64_t count = 0;
  uint64_t oldest_ms = 0;
};

struct PromiseSummary {
  bool tracked = false;
  bool sites = false;      // mode 'sites': the groups are by creating function
  bool named = false;      // the sites were named (the isolate has a code map)
  uint64_t pending = 0;    // tracked and pending
  uint64_t untracked = 0;  // pending past the table's capacity: counted only
  std::vector<PromiseGroup> groups;  // largest first; without sites one group
  size_t more_groups = 0;  // past max_groups
};

// Watchdog side: the pending promises of `isolate`, grouped by site.
PromiseSummary SummarizePromises(v8::Isolate* isolate, size_t max_groups);

}  // namespace gmr
