// Pending promises, per isolate, for the Green Threads section (the
// trackPromises option): each promise's creation site and age, kept in a
// fixed native table that the watchdog reads, so the section has them also
// when the thread is stuck and runs no JavaScript.
//
// A V8 promise hook (Isolate::SetPromiseHook: Node itself uses the
// per-context hooks, which this leaves alone) gives each new promise a slot
// with the code address of the JavaScript frame that created it (a
// one-frame V8 stack sample, named later from the code map) and its time,
// and keeps the slot's tag in the promise's internal field (which Node
// leaves unused), so that its settling frees exactly that slot. Memory is
// fixed: past 65,536 pending promises, new ones are only counted. A promise collected by the GC without ever settling
// stays: whatever awaited it will never resume, which is worth seeing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v8 {
class Isolate;
}

namespace gmr {

// The process-wide switch (off by default). On: each isolate starts
// tracking on its own thread (StartPromiseTracking), where the code map is
// switched too (see isolates/switches.cc).
void SetPromiseTrackingEnabled(bool enabled);
bool PromiseTrackingEnabled();

// On the isolate's thread: follows the switch.
void FollowPromiseTracking(v8::Isolate* isolate);
// On the isolate's thread, before it is disposed.
void StopPromiseTracking(v8::Isolate* isolate);

struct PromiseGroup {
  std::string function;  // "" when no JavaScript frame created it (Node's internals)
  std::string file;
  int line = 0;          // the function's start line, from the code map
  int column = 0;
  uint64_t count = 0;
  uint64_t oldest_ms = 0;
};

struct PromiseSummary {
  bool tracked = false;
  bool named = false;      // the sites were named (the isolate has a code map)
  uint64_t pending = 0;    // tracked and pending
  uint64_t untracked = 0;  // pending past the table's capacity: counted only
  std::vector<PromiseGroup> groups;  // largest first
  size_t more_groups = 0;  // past max_groups
};

// Watchdog side: the pending promises of `isolate` grouped by site.
PromiseSummary SummarizePromises(v8::Isolate* isolate, size_t max_groups);

}  // namespace gmr
