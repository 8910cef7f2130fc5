// Each JavaScript thread's heap figures, for the report's Memory section.
// V8 gives them only on the isolate's own thread, so they are recorded
// there, into a table the watchdog reads: after every garbage collection (a
// GC epilogue callback per isolate, with a prologue one that times the
// pause), when the thread is first met, and when it answers a capture (its
// JavaScript-stack interrupt, or a node::RequestInterrupt that wakes an idle
// event loop). A thread stuck since keeps its last figures, with their time.
// Nothing runs while a thread is idle: no timer, no polling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace v8 {
class Isolate;
}

namespace gmr {

constexpr size_t kMaxHeapSpaces = 16;

struct HeapSpaceFigures {
  const char* name = nullptr;  // V8's own static string
  size_t used = 0;
  size_t size = 0;
};

// kInterrupt: when it was met or answered an interrupt (a report's, or
// the watchdog's request for these figures).
enum class HeapFiguresSource { kNone, kGc, kInterrupt };

struct HeapFigures {
  HeapFiguresSource source = HeapFiguresSource::kNone;
  uint64_t at_unix_ms = 0;
  uint64_t at_mono_ns = 0;   // CLOCK_MONOTONIC, for the age
  size_t used = 0, total = 0, limit = 0, external = 0;
  size_t space_count = 0;
  HeapSpaceFigures spaces[kMaxHeapSpaces];
  // Collections (scavenges, minor and full mark-compacts) since the thread
  // was met, and their pauses (prologue to epilogue, on its thread).
  uint64_t gc_count = 0;
  uint64_t gc_total_ns = 0;
  int last_gc_type = 0;       // v8::GCType; 0 when none yet
  uint64_t last_gc_pause_ns = 0;
  uint64_t last_gc_unix_ms = 0;
};

// On the isolate's thread (the switches' follow): installs its GC
// callbacks once and records its figures.
void FollowHeapFigures(v8::Isolate* isolate);
// On its thread, before it is disposed: removes them, forgets the figures.
void ForgetHeapFigures(v8::Isolate* isolate);
// On its thread (an interrupt answering a capture): records them now.
void RecordHeapFigures(v8::Isolate* isolate);

// Watchdog side. Asks every known JavaScript thread with an event loop to
// record its figures (node::RequestInterrupt: an idle loop wakes for it, a
// thread running JavaScript takes it at its next interrupt check, one
// blocked in native code not at all). Returns the monotonic time asked.
uint64_t AskHeapFigures();
// Waits until each of `isolates` recorded figures since `asked_ns`, until
// `deadline_ns` (monotonic) at the latest.
void WaitHeapFigures(const std::vector<v8::Isolate*>& isolates, uint64_t asked_ns, uint64_t deadline_ns);
// The figures last recorded on `isolate`; source kNone when none.
HeapFigures HeapFiguresOf(v8::Isolate* isolate);

uint64_t MonotonicNs();

}  // namespace gmr
