#include "thread_text.h"

namespace gmr {

const char* ThreadStateName(char s) {
  switch (s) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk wait";
    case 'T': return "stopped";
    case 't': return "tracing stop";
    case 'Z': return "zombie";
    case 'X': return "dead";
    case 'I': return "idle";
    default: return "unknown";
  }
}

const char* PathBasename(const char* path) {
  const char* base = path;
  for (const char* p = path; p && *p; p++)
    if (*p == '/') base = p + 1;
  return base;
}

void WriteRule(SafeText* w) {
  for (int i = 0; i < 72; i++) w->Char('=');
  w->Char('\n');
}

void WriteBox(SafeText* w, const char* title) {
  WriteRule(w);
  w->Str("====").Centred(title, 64).Str("====\n");
  WriteRule(w);
}

void WriteThreadHeading(SafeText* w, int tid, const char* name, const char* kind, bool crashed) {
  char text[128];
  SafeText h(text, sizeof text - 1);
  h.Str("Thread #").Dec(tid).Char(' ').Str(name).Str(" (").Str(kind);
  if (crashed) h.Str(", crashed");
  h.Char(')');
  text[h.size()] = '\0';
  w->Str("------").Centred(text, 60).Str("------\n");
}

void WriteFrameLine(SafeText* w, size_t i, size_t n, const FrameText& f) {
  // The index column as wide as the largest index, so addresses line up.
  int width = n > 100 ? 3 : n > 10 ? 2 : 1;
  w->Str("  #").Dec(uint64_t(i));
  for (int pad = (i > 99 ? 3 : i > 9 ? 2 : 1); pad < width; pad++) w->Char(' ');
  w->Str("  ").Hex(f.pc, 16).Str("  ");
  if (f.found) {
    if (f.symbol[0]) w->Str(f.symbol).Char('+').Hex(f.symbol_offset);
    else w->Str(PathBasename(f.module)).Char('+').Hex(f.module_offset);
    if (f.module[0]) w->Str("  (").Str(PathBasename(f.module)).Char(')');
  } else if (!f.js_function) {
    w->Str("??");
  }
  if (f.js_function) {
    if (f.found) w->Str("  ");
    w->Str("JS: ").Str(f.js_function[0] ? f.js_function : "<anonymous>").Str(" (");
    w->Str(f.js_file[0] ? PathBasename(f.js_file) : "<unknown>");
    if (f.js_line > 0) w->Char(':').Dec(f.js_line);
    w->Char(')');
  }
  w->Char('\n');
}

}  // namespace gmr
