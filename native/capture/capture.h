// One whole capture of the process, as the report wants it: every thread
// with its native stack (unwound and symbolized) and, for JS threads, its
// JavaScript stack. Runs on the watchdog thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../green/loop_walk.h"
#include "../isolates/registry.h"
#include "../memory/heap_figures.h"
#include "../symbolize/symbolize.h"
#include "../util/proc.h"
#include "js_stacks.h"
#include "thread_snapshot.h"

namespace gmr {

struct NativeFrame {
  uintptr_t pc = 0;
  std::string symbol;
  std::string module;
  uintptr_t symbol_offset = 0;
  uintptr_t module_offset = 0;
  int method = 0;  // UnwindMethod
  // The JS function this frame runs, from the isolate's code map: a frame
  // in JIT code, or in the interpreter (bytecode handlers, trampolines).
  bool has_js = false;
  JsFrame js;                     // line/column: the function's start
};

struct CapturedThread {
  ThreadSnapshot snapshot;        // stack copy dropped once unwound
  std::vector<NativeFrame> native;
  bool js_requested = false;      // an interrupt was posted for its JS stack
  JsStack js;
  // The V8 sample's JS frames named by the code map, innermost first; line
  // and column are those of each function's start. Works when the thread
  // cannot answer an interrupt (blocked in native code).
  std::vector<JsFrame> sampled_js;
  ThreadIdentity identity;        // worker threadId and name, once known
  // A JavaScript thread that did not answer the capture signal: the isolate
  // the registry knows on it, asked for its JavaScript stack all the same.
  v8::Isolate* unanswered_isolate = nullptr;
  // Waiting in pthread_mutex_lock: the mutex, and the thread that holds it
  // (glibc keeps the owner's tid in the mutex); 0 when not.
  uintptr_t lock_address = 0;
  int lock_owner_tid = 0;
  // A JavaScript thread's heap figures as last recorded on it (source
  // kNone: never), read after the JavaScript stacks.
  HeapFigures heap;
};

struct Capture {
  uint64_t started_unix_ms = 0;
  uint64_t signal_phase_us = 0;   // signalling and copying all threads
  uint64_t js_phase_us = 0;       // waiting for JS stacks
  uint64_t total_us = 0;
  std::vector<CapturedThread> threads;
  std::vector<LoopInfo> loops;    // each JS thread's event loop (Green Threads)
  ProcessMemory memory;           // RSS, swap, descriptors (the Memory section)
  std::vector<LoadedObject> objects;  // the loaded objects, as the symbolizer read them
  uint64_t started_mono_ns = 0;   // heap figures recorded since are this report's
  uint64_t ended_mono_ns = 0;     // the heap figures' ages count to here
  // Files the capture could not open for want of a file descriptor, even
  // in the spare's place (util/proc.h): some of them, and how many.
  std::vector<std::string> unopened_files;
  size_t unopened_count = 0;
  // A stall report's: the captures taken while the loop was not turning,
  // oldest first, each sample_interval_ms apart (watchdog/stall.h).
  std::vector<Capture> earlier;
  int sample_interval_ms = 0;
};

struct CaptureSettings {
  SnapshotOptions threads;
  int js_timeout_ms = 200;        // deadline for all interrupts together
  int max_handles = 50;           // handles described per event loop
  int caller_tid = 0;             // a JS thread asking for its own report: its stack comes in caller_stack
  JsStack caller_stack;
};

Capture CaptureProcess(const CaptureSettings& settings);

// Meets the isolates of threads that never loaded the library (workers) now,
// while they run, rather than at the first report, when they may be blocked:
// each is made known, tells its threadId and name, and gets its code map.
// A signal per thread, no stack copied, nothing waited for. Watchdog only.
// True when every isolate seen was known already, with its identity: the
// meeting is over (a worker still bootstrapping is met again later).
bool MeetNewIsolates(const SnapshotOptions& options);


}  // namespace gmr
