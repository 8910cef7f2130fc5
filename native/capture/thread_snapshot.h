// A snapshot of every thread of the process, taken by a per-thread signal.
//
// The watchdog lists /proc/self/task, arms one slot per thread and sends each
// thread the capture signal with tgkill. The handler (thread_snapshot.cc) only
// copies registers, the top of the stack and, on a thread with an entered V8
// isolate, a V8 stack sample into the thread's slot, then returns: the thread
// runs on while the watchdog unwinds and symbolizes the copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../unwind/unwind.h"

namespace v8 {
class Isolate;
}

namespace gmr {

// V8's sample of a thread with an entered isolate (GetStackSample).
struct V8Sample {
  v8::Isolate* isolate = nullptr;   // entered on the thread; nullptr: not a JS thread
  int vm_state = -1;                // v8::StateTag; -1 when not sampled
  size_t frame_count = 0;           // JavaScript frames seen by the sampler
  std::vector<uintptr_t> frames;    // their pcs
  uintptr_t external_callback = 0;  // native function called from JS, if any
  uint64_t code_events = 0;         // the isolate's code map as of the sample (CodeMapEventCount)
};

struct ThreadSnapshot {
  int tid = 0;
  std::string name;                 // /proc/self/task/TID/comm
  char os_state = '?';              // R, S, D, T, Z ... from /proc/self/task/TID/stat
  uint64_t cpu_user_us = 0;
  uint64_t cpu_system_us = 0;
  bool self = false;                // the capturing (watchdog) thread itself
  bool skipped = false;             // SnapshotOptions::skip_tid: not signalled
  bool captured = false;            // the handler ran in time, or from_proc
  bool from_proc = false;           // read from /proc while blocked in a syscall (blocked_thread.h)
  std::string missing_reason;       // why not, when !captured
  uint64_t interrupted_ns = 0;      // time the thread spent in the handler
  bool in_syscall = false;          // signalled in a system call (a blocking one, mostly)
  Registers regs;
  std::vector<unsigned char> stack; // copy of [regs.sp, regs.sp + stack.size())
  V8Sample v8;
};

struct SnapshotOptions {
  size_t max_stack_bytes = 128 * 1024;  // at most 128 KB: each slot's own buffer
  int timeout_ms = 100;             // for all threads to answer the signal
  bool identify_only = false;       // isolates only: no /proc reads, no stack read from /proc
  int skip_tid = 0;                 // a thread not to signal: the one that crashed (fatal_signal.h)
  // When set, only threads it accepts are signalled (the others are listed
  // as skipped): a meeting round asks new threads only.
  std::function<bool(int tid)> only;
};

// Called on the watchdog while a thread that has an isolate unknown to
// IsolateKnown() is held in its handler: while it is held, the isolate cannot
// be disposed, so the callee may safely call RequestInterrupt on it.
using FirstContactFn = std::function<void(v8::Isolate*, int tid)>;

// Lock-free test used by the signal handler. Async-signal-safe.
using IsolateKnownFn = bool (*)(v8::Isolate*);

// Async-signal-safe: the report signal's handler brackets its body with
// these, giving the context it interrupted. A thread the capture signal
// catches inside that handler (the watchdog it woke may capture before the
// handler returns) is captured as it was when the report signal came: in
// its own system call, say, not in the handler's write().
void EnterReportHandler(void* interrupted_context);
void LeaveReportHandler();

// Installs the capture signal's handler once. Picks a real-time signal that
// nobody handles yet. Returns the signal number, or -1.
int InstallCaptureHandler(IsolateKnownFn isolate_known);

// The signal InstallCaptureHandler picked, or -1.
int CaptureSignal();

// Test builds (test_hooks.h): capture handlers made late so far.
uint64_t TestLateCaptureHandlers();
// Test builds: first contacts the watchdog began (held threads).
uint64_t TestFirstContacts();

// Signals every thread but the caller (and skip_tid) and collects what the
// handlers copied. Called on the watchdog thread, and on the fatal-signal
// helper once the process crashed: one capture at a time, under a lock.
std::vector<ThreadSnapshot> CaptureAllThreads(const SnapshotOptions& options,
                                              const FirstContactFn& first_contact);

}  // namespace gmr
