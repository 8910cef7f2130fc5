// The pieces of a thread's text that the native writers share: the
// fatal-signal report (fatal_report.cc) and the reporter's native fallback
// (reporter/fallback_report.cc) write boxes, thread headings and native
// frames one way, the way the TypeScript text view does (src/format/text.ts).
// Every function only appends to a SafeText: no allocation, no lock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "safe_text.h"

namespace gmr {

// "sleeping", "running", ... for a /proc state letter.
const char* ThreadStateName(char state);

// A 72-column `=` rule, and a section box: rule, centred title, rule.
void WriteRule(SafeText* w);
void WriteBox(SafeText* w, const char* title);

// "------   Thread #TID NAME (KIND)   ------"
void WriteThreadHeading(SafeText* w, int tid, const char* name, const char* kind, bool crashed);

// One native frame of `count`: "  #I  0xPC  symbol+0xOFF  (module)", the
// module's offset when no symbol covers it, `??` when nothing maps it (or
// only the JavaScript function, for JIT code).
// The offsets are those of the frame's own address (already adjusted for a
// return address by the caller).
struct FrameText {
  uintptr_t pc = 0;
  bool found = false;              // something maps the address
  const char* symbol = "";         // "" when no symbol covers it
  uintptr_t symbol_offset = 0;
  const char* module = "";         // path of the loaded object
  uintptr_t module_offset = 0;
  // The JavaScript function the frame runs, when known: "  JS: fn (file:line)".
  const char* js_function = nullptr;
  const char* js_file = "";
  int js_line = 0;
};
void WriteFrameLine(SafeText* w, size_t index, size_t count, const FrameText& f);

// The last path component.
const char* PathBasename(const char* path);

}  // namespace gmr
