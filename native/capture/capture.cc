#include "capture.h"

#include <v8.h>

#include <dlfcn.h>

#include <chrono>

#include "../symbolize/symbolize.h"
#include "../unwind/unwind.h"

namespace gmr {
namespace {

constexpr size_t kMaxNativeFrames = 128;

uint64_t SinceUs(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now() - start).count();
}

// A JS thread is asked for its stack when the sampler saw JS frames or says
// it is inside V8: an idle thread has no JavaScript stack to give.
bool WantsJsStack(const V8Sample& s) {
  if (!s.isolate) return false;
  if (s.frame_count > 0) return true;
  return s.vm_state != v8::EXTERNAL && s.vm_state != v8::IDLE && s.vm_state != v8::ATOMICS_WAIT;
}

Symbolizer& SharedSymbolizer() {
  static Symbolizer* symbolizer = new Symbolizer;  // never destroyed: see js_stacks.cc
  return *symbolizer;
}

void Symbolize(ThreadCapture* t) {
  const ThreadSnapshot& s = t->snapshot;
  if (!s.captured) return;
  StackCopy copy;
  copy.base = s.regs.rsp;
  copy.size = s.stack.size();
  copy.data = s.stack.data();
  UnwoundFrame frames[kMaxNativeFrames];
  size_t n = Unwind(s.regs, copy, frames, kMaxNativeFrames);
  Symbolizer& symbolizer = SharedSymbolizer();
  for (size_t i = 0; i < n; i++) {
    NativeFrame f;
    f.pc = frames[i].pc;
    f.method = static_cast<int>(frames[i].method);
    Symbol sym;
    // A return address points after the call: name the call's own symbol.
    uintptr_t lookup = i == 0 ? f.pc : f.pc - 1;
    if (symbolizer.Lookup(lookup, &sym)) {
      f.symbol = sym.name;
      f.module = sym.module;
      f.symbol_offset = sym.symbol_offset + (lookup != f.pc ? 1 : 0);
      f.module_offset = sym.module_offset + (lookup != f.pc ? 1 : 0);
    }
    t->native.push_back(std::move(f));
  }
}

}  // namespace

void WarmUpCapture() {
  Symbolizer& symbolizer = SharedSymbolizer();
  symbolizer.Refresh();
  Symbol ignored;
  // Node's own symbol table is the big one; every JS thread's stack is in it.
  if (void* uv_run = dlsym(RTLD_DEFAULT, "uv_run")) symbolizer.Lookup(reinterpret_cast<uintptr_t>(uv_run), &ignored);
}

Capture CaptureProcess(const CaptureSettings& settings) {
  Capture out;
  auto start = std::chrono::steady_clock::now();
  out.started_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  JsStackRound round;
  std::vector<ThreadSnapshot> snapshots = CaptureAllThreads(
      settings.threads, [&](v8::Isolate* isolate, int) { round.Post(isolate, false); });
  out.signal_phase_us = SinceUs(start);

  auto js_start = std::chrono::steady_clock::now();
  std::vector<v8::Isolate*> wanted;
  for (const ThreadSnapshot& s : snapshots) {
    if (s.tid == settings.caller_tid || !WantsJsStack(s.v8)) continue;
    round.Post(s.v8.isolate, true);
    wanted.push_back(s.v8.isolate);
  }
  // Unwinding and symbolizing overlap with the wait for the interrupts.
  out.threads.reserve(snapshots.size());
  SharedSymbolizer().Refresh();
  for (ThreadSnapshot& s : snapshots) {
    ThreadCapture t;
    t.snapshot = std::move(s);
    Symbolize(&t);
    t.snapshot.stack.clear();
    t.snapshot.stack.shrink_to_fit();
    out.threads.push_back(std::move(t));
  }
  round.Wait(settings.js_timeout_ms, wanted);
  out.js_phase_us = SinceUs(js_start);

  for (ThreadCapture& t : out.threads) {
    v8::Isolate* isolate = t.snapshot.v8.isolate;
    if (t.snapshot.tid == settings.caller_tid) {
      t.js_requested = true;
      t.js = settings.caller_stack;
    } else if (isolate && WantsJsStack(t.snapshot.v8)) {
      t.js_requested = true;
      if (const JsStack* js = round.Result(isolate)) t.js = *js;
    }
  }
  out.total_us = SinceUs(start);
  return out;
}

}  // namespace gmr
