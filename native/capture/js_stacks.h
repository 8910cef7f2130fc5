// JavaScript stacks with function, file, line and column, asked of each JS
// thread with Isolate::RequestInterrupt and waited for on a bounded deadline.
//
// Isolates are tracked in a registry so that an interrupt is only ever
// requested on a live isolate: an isolate becomes known when its thread loads
// the addon or first answers an interrupt (both register a node environment
// cleanup hook, which runs on that thread before the isolate is disposed).
// An unknown isolate is only interrupted while its thread is held in the
// capture signal's handler (see thread_capture.h), when it cannot go away.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../green/loop_walk.h"
#include "thread_identity.h"

namespace v8 {
class Isolate;
}

namespace gmr {

struct JsFrame {
  std::string function;
  std::string file;
  int line = 0;
  int column = 0;
};

struct JsStack {
  bool answered = false;
  uint64_t answered_after_us = 0;
  std::vector<JsFrame> frames;
};

// Async-signal-safe: lock-free scan of a fixed table.
bool IsolateKnown(v8::Isolate* isolate);

// On a JS thread with a node environment: makes the current isolate known
// and, unless switched off, gives it a code map (native/codemap/).
void RegisterCurrentIsolate();

// Event-loop progress of every JavaScript thread with a node environment
// (the reporter's excepted), read under the registry lock, so no loop is
// freed meanwhile. `iterations` is libuv's loop count.
struct LoopProgress {
  int tid;
  int thread_id;       // worker_threads threadId, -1 when not known
  uint64_t iterations;
  int backend_fd;      // the loop's epoll fd: waiting on it is idle, not stalled
};
std::vector<LoopProgress> ReadLoopProgress();

// The handles of every such loop (native/green/), walked under the registry
// lock, and their threads' pending promises and timers, summarized after
// it; `max_details` handles described per loop.
std::vector<LoopInfo> WalkLoops(size_t max_details);

// Asks every known isolate whose identity is not known yet to read it at its
// next interrupt check, and one whose timer tracking could not be installed
// yet to try again (one request outstanding each).
void RequestMissingIdentities();

// Some known isolate still has to install its timer tracking.
bool SwitchesPending();

// The worker identity of the known isolate running on thread `tid`.
ThreadIdentity IdentityOf(v8::Isolate* isolate, int tid);

// Entries in the isolate registry (one per live JavaScript thread met).
size_t RegistrySize();

// The known isolate running on thread `tid`, nullptr when none: a thread
// that did not answer the capture signal is still known to run JavaScript.
v8::Isolate* KnownIsolateOn(int tid);

// Requests `callback` on `isolate` only while the isolate is known and alive
// (under the registry lock its cleanup hook also takes). False otherwise.
bool InterruptIfAlive(v8::Isolate* isolate, void (*callback)(v8::Isolate*, void*), void* data);

// The code map switch (on by default) and the promise tracking switch (off
// by default): the calling thread's isolate follows at once, every other
// known isolate at its next interrupt check.
void SetSwitchesEverywhere(bool code_map, bool track_promises);

// One report's interrupts. Post() may be called from the first-contact hook
// (thread held) with known=false, or afterwards with known=true; Wait()
// collects the answers until the deadline. Requests that are not answered in
// time are abandoned: their callback frees them when it runs.
class JsStackRound {
 public:
  JsStackRound();
  ~JsStackRound();
  void Post(v8::Isolate* isolate, bool known);
  bool Posted(v8::Isolate* isolate) const;
  // Waits for the answers of `wanted` only: an isolate posted at first
  // contact just to make it known is not waited for.
  void Wait(int timeout_ms, const std::vector<v8::Isolate*>& wanted);
  // nullptr when no request was posted for this isolate.
  const JsStack* Result(v8::Isolate* isolate) const;

  // Shared with the interrupt callback (js_stacks.cc).
  struct Request;

 private:
  std::map<v8::Isolate*, Request*> requests_;
  std::map<v8::Isolate*, JsStack> results_;
};

// Stack of the calling thread, captured directly (for the API caller).
JsStack CurrentJsStack(v8::Isolate* isolate);

}  // namespace gmr
