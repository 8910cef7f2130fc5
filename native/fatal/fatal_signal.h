// The report on a fatal signal (the reportOnFatalSignal option): on SIGSEGV,
// SIGBUS, SIGILL, SIGFPE or SIGABRT, a text report of every thread's native
// stack, then the signal goes on to the action that was there before ours
// (Node's, another library's, or the default), so core dumps and exit
// statuses are what they would have been.
//
// Who does what, and why:
// - The crashing thread's handler (on an alternate stack: a stack overflow
//   is a typical SIGSEGV) copies its own registers and stack, opens the
//   report's destination and writes the header, all async-signal-safe.
// - It then wakes a thread of our own kept for this (fatal_report.h), and
//   waits for it at most kHelperWaitMs. That thread unwinds and symbolizes
//   with the code the ordinary reports use, which allocates and takes locks:
//   it is not in a signal handler, and if the crash left the heap or the
//   loader's lock unusable, it hangs, not the crashing thread. The watchdog
//   is not used for this: it may be busy handing a report to the very
//   thread that crashed.
// - When the helper does not finish in time, the crashing thread writes its
//   own frames (pc and frame-pointer chain, module and offset, read from
//   /proc/self/maps with read(2)) and goes on.
// - A second fault inside the handler finds the guard set and falls through
//   to the default action.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "../unwind/unwind.h"

namespace v8 {
class Isolate;
}

namespace gmr {

struct FatalConfig {
  bool enabled = false;
  std::string log_dir;       // "": stderr
  std::string service_name;  // names the report file
  std::string node_version;  // for the header
};

// Installs or removes the handlers (removing gives each signal back the
// action it had before). Main thread; returns "" or an error message.
std::string ConfigureFatalSignals(const FatalConfig& config);

// On a JavaScript thread other than the main one, when it follows the
// switches (js_stacks.h): while reports on fatal signals are on, it gets an
// alternate signal stack of its own, so that a native stack overflow there
// is reported too (the main thread gets one when the handlers are
// installed). ReleaseFatalAltStack frees it, on the same thread, when its
// environment is cleaned up.
void FollowFatalAltStack();
void ReleaseFatalAltStack();

// What the crashing thread hands to the helper. Written by the handler
// before it wakes the helper; read-only afterwards.
struct CrashRecord {
  int sig = 0;
  int code = 0;                 // si_code
  uintptr_t fault_address = 0;  // si_addr, for faults the kernel raised
  int tid = 0;
  v8::Isolate* isolate = nullptr;  // a JavaScript thread's (main or worker); its heap figures are looked up by it
  Registers regs;
  const unsigned char* stack = nullptr;  // copy of [regs.sp, regs.sp + stack_size)
  size_t stack_size = 0;
  int fd = -1;                  // the report's destination
};

// For the helper thread (fatal_report.cc): blocks until a thread crashes and
// returns its record.
// On the helper thread, first: it takes its own faults (not the signals
// sent to the process) to the fatal handler, which ends the helper and
// lets the crashing thread finish the report alone.
void FatalHelperStarted();

const CrashRecord& WaitForCrash();
// The helper has its text ready: true when it may write it (the crashing
// thread has not given up on it), false when it must not.
bool BeginHelperWrite();
void EndHelperWrite();


}  // namespace gmr
