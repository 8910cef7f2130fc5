// What each JavaScript thread switches on for itself, on its own thread:
// its code map (native/codemap/), promise tracking (off by default), timer
// tracking (native/green/) and the fatal handlers' alternate stack. The
// process-wide switches are set here; every known isolate follows them at
// its next interrupt check (the registry's ThreadHooks).
#pragma once

#include "../green/promise_tracker.h"

namespace gmr {

// At the addon's load, before any isolate is registered.
void InstallThreadSwitches();

// The code map switch (on by default) and the promise tracking switch (off
// by default; with or without sites): the calling thread's isolate follows
// at once, every other known isolate at its next interrupt check.
void SetSwitchesEverywhere(bool code_map, PromiseTracking track_promises);

}  // namespace gmr
