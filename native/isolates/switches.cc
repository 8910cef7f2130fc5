#include "switches.h"

#include <v8.h>

#include "../codemap/code_map.h"
#include "../fatal/fatal_signal.h"
#include "../green/promise_tracker.h"
#include "../green/timer_tracker.h"
#include "../memory/heap_figures.h"
#include "registry.h"

namespace gmr {
namespace {

// On the isolate's thread: the code map, promise tracking and the fatal
// handlers' alternate stack follow their process-wide switches; the heap
// figures' GC callbacks are installed once (native/memory/). The
// reporter's environment lives for one report: it gets none of them.
void Follow(v8::Isolate* isolate) {
  if (OnReporterThread()) return;
  if (!CodeMapEnabled()) StopCodeMap(isolate);
  else StartCodeMap(isolate);
  FollowPromiseTracking(isolate);
  FollowTimerTracking(isolate);
  FollowFatalAltStack();
  FollowHeapFigures(isolate);  // always on: its callbacks run at GCs only
}

// On its thread, before the isolate goes: its code event handler must go
// first, and what the watchdog reads of it is forgotten.
void Cleanup(v8::Isolate* isolate) {
  StopCodeMap(isolate);
  ForgetPromises(isolate);
  ForgetTimers(isolate);
  ForgetHeapFigures(isolate);
  ReleaseFatalAltStack();
}

// A bootstrapping worker cannot install promise or timer tracking yet (nor
// remove its promise hooks): asked again.
bool Pending(v8::Isolate* isolate) { return PromiseTrackingPending(isolate) || TimerTrackingPending(isolate); }

void OnSwitch(v8::Isolate* isolate, void*) { Follow(isolate); }

}  // namespace

void InstallThreadSwitches() { SetThreadHooks({Follow, Cleanup, Pending}); }

void SetSwitchesEverywhere(bool code_map, PromiseTracking track_promises) {
  SetCodeMapEnabled(code_map);
  SetPromiseTracking(track_promises);
  v8::Isolate* self = v8::Isolate::TryGetCurrent();
  if (self) Follow(self);
  // Other isolates switch on their own thread, at their next interrupt check.
  InterruptAllBut(self, OnSwitch);
}

}  // namespace gmr
