// Each JavaScript thread's heap figures, for the report's Memory section.
// V8 gives them only on the isolate's own thread, so they are recorded
// there, into a table the watchdog reads: after every garbage collection (a
// GC epilogue callback per isolate, with a prologue one that times the
// pause), when the thread is first met, and when it answers a capture (its
// JavaScript-stack interrupt; an idle one, asked, at its next JavaScript).
// A thread stuck since keeps its last figures, with their time.
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

// Watchdog side, without waiting: asks each of `idle` (known JavaScript
// threads idle in their event loop) to record its figures at its next
// JavaScript (a V8 interrupt, posted only while the isolate is alive, one
// outstanding per isolate). A loop is not woken for it: the figures a
// report shows for an idle thread are those of its last collection or its
// last answer, with their age, and this ask makes the next report's fresh.
// (node::RequestInterrupt would wake it, but a worker's environment can be
// freed under that call: it crashed the process under worker churn.)
void AskHeapFigures(const std::vector<v8::Isolate*>& idle);
// The figures last recorded on `isolate`; source kNone when none.
HeapFigures HeapFiguresOf(v8::Isolate* isolate);
// The same without waiting for the table's lock (the fatal-signal report:
// the crashed thread may hold it): false when it is held.
bool TryHeapFiguresOf(v8::Isolate* isolate, HeapFigures* out);

uint64_t MonotonicNs();

}  // namespace gmr
