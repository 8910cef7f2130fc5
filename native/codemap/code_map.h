// A per-isolate map from code addresses to JavaScript functions, fed by a
// v8::CodeEventHandler, so that the watchdog can name the pcs of a V8 stack
// sample and the JIT frames of a native stack without touching the isolate,
// which may be blocked in native code (execSync, a sync fs call) and never
// answer an interrupt.
//
// What V8 (11.x) reports, and what this relies on:
// - Enabling a handler replays the code that already exists (builtins,
//   bytecode handlers, every compiled function), so enabling late is fine.
// - Creation events carry the code's instruction start and size. For an
//   interpreted function that is its BytecodeArray: start is the first
//   bytecode, size the bytecode length. GetStackSample records an interpreted
//   frame as the tagged BytecodeArray + the frame's bytecode offset, which is
//   that first-bytecode address + the current bytecode index: one lookup
//   resolves both kinds of pcs.
// - Relocation events (GC moving code or a BytecodeArray) carry the old and
//   new start, but V8 11.3 only sends them while the isolate "logs object
//   relocation", which a CodeEventHandler alone does not turn on: a JIT code
//   event handler that ignores its events is set for the length of each full
//   GC (it clears one that someone else may have set on the isolate).
// - There are no deletion events: a creation or move over an address range
//   supersedes whatever was recorded there. A pc in live code therefore
//   always finds the latest event for its object.
//
// Cost on the isolate's thread: each event appends one fixed-size record
// (names copied into an arena, script names interned) under a per-isolate
// mutex that only a report ever contends. Records are turned into a sorted
// index lazily, when a report reads the map, or when many are pending.
//
// Memory is bounded: at most 65,536 records (40 bytes each) wait to be
// indexed, then the isolate's thread indexes them; the index keeps at most
// 131,072 entries (about 100 bytes each with its name), and when it would
// hold more the oldest quarter by creation is dropped (bytecode handlers and
// interpreter trampolines are kept). Function names are cut at 255 bytes,
// script names at 1023; past 65,536 scripts new ones go unnamed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace v8 {
class Isolate;
}

namespace gmr {

// On (default) or off for the whole process. Off: isolates stop listening
// and free their map (the caller's isolate at once, others from their own
// thread at their next interrupt check, see isolates/switches.cc) and none starts.
void SetCodeMapEnabled(bool enabled);
bool CodeMapEnabled();

// On the isolate's own thread, in a context: starts listening (replaying the
// existing code). No-op when disabled or already listening.
void StartCodeMap(v8::Isolate* isolate);

// On the isolate's own thread, before the isolate is disposed: stops
// listening and frees the map.
void StopCodeMap(v8::Isolate* isolate);

// Async-signal-safe (atomics over a fixed table): how many events the map of
// `isolate` has recorded so far; 0 when it has none. Taken with a stack
// sample, it lets the sample be resolved against the map as it was then.
uint64_t CodeMapEventCount(v8::Isolate* isolate);

enum class CodeKind : uint8_t {
  kUnknown = 0,      // no code recorded there
  kJavaScript,       // a JS function's code: bytecode, baseline or optimized
  kInterpreter,      // a bytecode handler or an interpreter entry trampoline
  kOther,            // builtins, stubs, regexp code, ...
};

struct CodeLookup {
  CodeKind kind = CodeKind::kUnknown;
  uintptr_t start = 0;     // of the code object (first bytecode for bytecode)
  std::string function;    // JS function name; builtin name for kInterpreter/kOther
  std::string file;        // script name, "" when none
  int line = 0;            // of the function's start, 1-based; 0 when unknown
  int column = 0;
};

// Watchdog side: resolves `pcs` against the map of `isolate` as it was after
// `events` events (0: as it is now). Takes the map's lock; never touches the
// isolate. False when the isolate has no map (out stays kUnknown).
bool ResolveCodeAddresses(v8::Isolate* isolate, uint64_t events, const uintptr_t* pcs, size_t count,
                          CodeLookup* out);

struct CodeMapStats {
  size_t maps = 0;
  size_t events = 0;            // recorded since enabled
  size_t pending = 0;           // records waiting to be indexed
  size_t indexed = 0;           // index entries
  size_t dropped = 0;           // entries dropped to stay under the cap
  size_t scripts = 0;
  size_t bytes = 0;             // records + index + names + scripts, approximate
};

// Sums over every map (for tests and the bench).
CodeMapStats GetCodeMapStats();

}  // namespace gmr
