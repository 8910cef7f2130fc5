// Captures as plain JavaScript objects: all formatting is TypeScript's.
#include "convert.h"

#include <signal.h>
#include <unistd.h>
#include <v8.h>

#include <cstdio>

#include "capture/thread_snapshot.h"
#include "util/signal_name.h"

namespace gmr {
namespace {

const char* VmStateName(int state) {
  switch (state) {
    case v8::JS: return "JS";
    case v8::GC: return "GC";
    case v8::PARSER: return "PARSER";
    case v8::BYTECODE_COMPILER: return "BYTECODE_COMPILER";
    case v8::COMPILER: return "COMPILER";
    case v8::OTHER: return "OTHER";
    case v8::EXTERNAL: return "EXTERNAL";
    case v8::ATOMICS_WAIT: return "ATOMICS_WAIT";
    case v8::IDLE: return "IDLE";
    default: return nullptr;
  }
}

std::string Hex(uintptr_t value) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%016zx", static_cast<size_t>(value));
  return buf;
}

Napi::Object JsFrameToJs(Napi::Env env, const JsFrame& frame) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("function", frame.function);
  f.Set("file", frame.file);
  f.Set("line", frame.line);
  f.Set("column", frame.column);
  return f;
}

Napi::Array JsFrames(Napi::Env env, const std::vector<JsFrame>& frames) {
  Napi::Array out = Napi::Array::New(env, frames.size());
  for (size_t i = 0; i < frames.size(); i++) out.Set(i, JsFrameToJs(env, frames[i]));
  return out;
}

Napi::Object HandleToJs(Napi::Env env, const HandleInfo& h) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", h.type);
  o.Set("active", h.active);
  o.Set("ref", h.ref);
  o.Set("closing", h.closing);
  o.Set("fd", h.fd);
  o.Set("local", h.local);
  o.Set("remote", h.remote);
  o.Set("listening", h.listening);
  o.Set("writeQueueBytes", static_cast<double>(h.write_queue_bytes));
  o.Set("dueInMs", h.has_due ? Napi::Value(Napi::Number::New(env, static_cast<double>(h.due_in_ms))) : env.Null());
  o.Set("repeatMs", static_cast<double>(h.repeat_ms));
  o.Set("pid", h.pid);
  o.Set("signum", h.signum);
  o.Set("path", h.path);
  o.Set("environmentOffset", static_cast<double>(h.environment_offset));
  return o;
}

Napi::Object LoopToJs(Napi::Env env, const LoopInfo& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tid", l.tid);
  o.Set("threadId", l.thread_id >= 0 ? Napi::Value(Napi::Number::New(env, l.thread_id)) : env.Null());
  o.Set("activeHandles", l.active_handles);
  o.Set("activeRequests", l.active_requests);
  o.Set("clockAgeMs", static_cast<double>(l.clock_age_ms));
  o.Set("waiting", l.waiting);
  Napi::Array handles = Napi::Array::New(env, l.handles.size());
  for (size_t i = 0; i < l.handles.size(); i++) handles.Set(i, HandleToJs(env, l.handles[i]));
  o.Set("handles", handles);
  o.Set("more", static_cast<double>(l.more));
  o.Set("problem", l.problem);
  if (l.promises.tracked) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("pending", static_cast<double>(l.promises.pending));
    p.Set("sites", l.promises.sites);
    p.Set("named", l.promises.named);
    p.Set("untracked", static_cast<double>(l.promises.untracked));
    Napi::Array groups = Napi::Array::New(env, l.promises.groups.size());
    for (size_t i = 0; i < l.promises.groups.size(); i++) {
      const PromiseGroup& g = l.promises.groups[i];
      Napi::Object go = Napi::Object::New(env);
      go.Set("function", g.function);
      go.Set("file", g.file);
      go.Set("line", g.line);
      go.Set("column", g.column);
      go.Set("count", static_cast<double>(g.count));
      go.Set("oldestMs", static_cast<double>(g.oldest_ms));
      groups.Set(i, go);
    }
    p.Set("groups", groups);
    p.Set("moreGroups", static_cast<double>(l.promises.more_groups));
    o.Set("promises", p);
  } else {
    o.Set("promises", env.Null());
  }
  if (l.timers.tracked) {
    Napi::Object tm = Napi::Object::New(env);
    Napi::Array list = Napi::Array::New(env, l.timers.timers.size());
    for (size_t i = 0; i < l.timers.timers.size(); i++) {
      const TimerInfo& t = l.timers.timers[i];
      Napi::Object to = Napi::Object::New(env);
      to.Set("function", t.function);
      to.Set("file", t.file);
      to.Set("line", t.line);
      to.Set("column", t.column);
      to.Set("dueInMs", t.armed ? Napi::Value(Napi::Number::New(env, static_cast<double>(t.due_in_ms))) : env.Null());
      to.Set("afterMs", static_cast<double>(t.after_ms));
      to.Set("repeat", t.repeat);
      list.Set(i, to);
    }
    tm.Set("timers", list);
    tm.Set("more", static_cast<double>(l.timers.more));
    tm.Set("untracked", static_cast<double>(l.timers.untracked));
    o.Set("timers", tm);
  } else {
    o.Set("timers", env.Null());
  }
  return o;
}

const char* GcKindName(int type) {
  switch (type) {
    case 1: return "scavenge";
    case 2: return "minor-mark-sweep";  // V8 11 calls it minor mark-compact
    case 4: return "mark-sweep-compact";
    default: return "other";
  }
}

Napi::Value HeapToJs(Napi::Env env, const HeapFigures& h, const Capture& c) {
  if (h.source == HeapFiguresSource::kNone) return env.Null();
  uint64_t ended_mono_ns = c.ended_mono_ns;
  Napi::Object o = Napi::Object::New(env);
  // Recorded during this capture (answering it), or earlier: after a
  // collection, or at an earlier interrupt (when it was met, an earlier report).
  o.Set("source", h.at_mono_ns >= c.started_mono_ns ? "report" : h.source == HeapFiguresSource::kGc ? "gc" : "earlier");
  o.Set("atUnixMs", static_cast<double>(h.at_unix_ms));
  o.Set("ageMs", ended_mono_ns > h.at_mono_ns ? static_cast<double>((ended_mono_ns - h.at_mono_ns) / 1000) / 1000.0 : 0.0);
  o.Set("used", static_cast<double>(h.used));
  o.Set("total", static_cast<double>(h.total));
  o.Set("limit", static_cast<double>(h.limit));
  o.Set("external", static_cast<double>(h.external));
  Napi::Array spaces = Napi::Array::New(env, h.space_count);
  for (size_t i = 0; i < h.space_count; i++) {
    Napi::Object sp = Napi::Object::New(env);
    sp.Set("name", h.spaces[i].name ? h.spaces[i].name : "");
    sp.Set("used", static_cast<double>(h.spaces[i].used));
    sp.Set("size", static_cast<double>(h.spaces[i].size));
    spaces.Set(i, sp);
  }
  o.Set("spaces", spaces);
  o.Set("gcCount", static_cast<double>(h.gc_count));
  o.Set("gcTotalMs", static_cast<double>(h.gc_total_ns / 1000) / 1000.0);
  if (h.last_gc_type) {
    Napi::Object last = Napi::Object::New(env);
    last.Set("kind", GcKindName(h.last_gc_type));
    last.Set("pauseMs", static_cast<double>(h.last_gc_pause_ns / 1000) / 1000.0);
    last.Set("atUnixMs", static_cast<double>(h.last_gc_unix_ms));
    o.Set("lastGc", last);
  } else {
    o.Set("lastGc", env.Null());
  }
  return o;
}

Napi::Object ThreadToJs(Napi::Env env, const CapturedThread& t, int pid, const Capture& c) {
  const ThreadSnapshot& s = t.snapshot;
  Napi::Object o = Napi::Object::New(env);
  o.Set("tid", s.tid);
  o.Set("name", s.name);
  o.Set("osState", std::string(1, s.os_state));
  o.Set("cpuUserUs", static_cast<double>(s.cpu_user_us));
  o.Set("cpuSystemUs", static_cast<double>(s.cpu_system_us));
  o.Set("isMain", s.tid == pid);
  o.Set("isWatchdog", s.self);
  o.Set("captured", s.captured);
  o.Set("fromProc", s.from_proc);
  o.Set("missingReason", s.missing_reason);
  o.Set("interruptedUs", static_cast<double>(s.interrupted_ns) / 1000.0);
  v8::Isolate* isolate = s.v8.isolate ? s.v8.isolate : t.unanswered_isolate;
  o.Set("hasIsolate", isolate != nullptr);
  if (t.lock_owner_tid) {
    Napi::Object lock = Napi::Object::New(env);
    lock.Set("address", Hex(t.lock_address));
    lock.Set("ownerTid", t.lock_owner_tid);
    o.Set("lockWait", lock);
  } else {
    o.Set("lockWait", env.Null());
  }
  o.Set("threadId", t.identity.thread_id >= 0 ? Napi::Value(Napi::Number::New(env, t.identity.thread_id)) : env.Null());
  o.Set("workerName", t.identity.worker_name);
  o.Set("maxOldGenerationMb", t.identity.max_old_generation_mb);
  o.Set("heap", HeapToJs(env, t.heap, c));
  o.Set("isolate", isolate ? Hex(reinterpret_cast<uintptr_t>(isolate)) : "");
  const char* vm = VmStateName(s.v8.vm_state);
  o.Set("vmState", vm ? Napi::Value(Napi::String::New(env, vm)) : env.Null());
  o.Set("jsFrameCount", static_cast<double>(s.v8.frame_count));
  o.Set("jsRequested", t.js_requested);
  o.Set("jsAnswered", t.js.answered);
  o.Set("jsAnsweredAfterUs", static_cast<double>(t.js.answered_after_us));
  o.Set("javascript", JsFrames(env, t.js.frames));
  o.Set("asyncCallers", t.js.async_read ? JsFrames(env, t.js.async_callers) : env.Null());
  // V8's sample named by the code map: for a thread that did not answer.
  o.Set("sampledJavascript", JsFrames(env, t.sampled_js));
  Napi::Array native = Napi::Array::New(env, t.native.size());
  for (size_t i = 0; i < t.native.size(); i++) {
    const NativeFrame& f = t.native[i];
    Napi::Object n = Napi::Object::New(env);
    n.Set("address", Hex(f.pc));
    n.Set("symbol", f.symbol);
    n.Set("module", f.module);
    n.Set("symbolOffset", static_cast<double>(f.symbol_offset));
    n.Set("moduleOffset", static_cast<double>(f.module_offset));
    n.Set("method", f.method);
    // The JavaScript function a frame in JIT code or the interpreter runs.
    n.Set("javascript", f.has_js ? Napi::Value(JsFrameToJs(env, f.js)) : env.Null());
    native.Set(i, n);
  }
  o.Set("native", native);
  return o;
}

}  // namespace

Napi::Object CaptureToJs(Napi::Env env, const Capture& c, const Trigger& trigger) {
  int capture_signal = CaptureSignal();
  Napi::Object o = Napi::Object::New(env);
  o.Set("startedUnixMs", static_cast<double>(c.started_unix_ms));
  o.Set("signalPhaseUs", static_cast<double>(c.signal_phase_us));
  o.Set("jsPhaseUs", static_cast<double>(c.js_phase_us));
  o.Set("totalUs", static_cast<double>(c.total_us));
  char name[16];
  o.Set("captureSignal", capture_signal > 0 ? Napi::Value(Napi::String::New(env, SignalName(capture_signal, name, sizeof name)))
                                            : env.Null());
  Napi::Object tr = Napi::Object::New(env);
  tr.Set("kind", trigger.kind);
  tr.Set("detail", trigger.detail);
  tr.Set("coalesced", trigger.coalesced);
  if (!trigger.out_path.empty()) {
    tr.Set("outPath", trigger.out_path);
    tr.Set("format", trigger.format);
  }
  if (!trigger.main_failure.empty()) tr.Set("mainFailure", trigger.main_failure);
  if (!trigger.main_not_picked_up.empty()) tr.Set("mainNotPickedUp", trigger.main_not_picked_up);
  o.Set("trigger", tr);
  int pid = getpid();
  Napi::Array threads = Napi::Array::New(env, c.threads.size());
  for (size_t i = 0; i < c.threads.size(); i++) threads.Set(i, ThreadToJs(env, c.threads[i], pid, c));
  o.Set("threads", threads);
  Napi::Array loops = Napi::Array::New(env, c.loops.size());
  for (size_t i = 0; i < c.loops.size(); i++) loops.Set(i, LoopToJs(env, c.loops[i]));
  o.Set("loops", loops);
  Napi::Object memory = Napi::Object::New(env);
  const ProcessMemory& m = c.memory;
  auto figure = [&](int64_t v) { return v < 0 ? env.Null() : Napi::Value(Napi::Number::New(env, static_cast<double>(v))); };
  memory.Set("rss", figure(m.rss));
  memory.Set("peakRss", figure(m.peak_rss));
  memory.Set("swap", figure(m.swap));
  memory.Set("rssAnon", figure(m.rss_anon));
  memory.Set("rssFile", figure(m.rss_file));
  memory.Set("fds", figure(m.fds));
  memory.Set("fdSoftLimit", figure(m.fd_soft_limit));
  memory.Set("fdHardLimit", figure(m.fd_hard_limit));
  o.Set("memory", memory);
  Napi::Array objects = Napi::Array::New(env, c.objects.size());
  for (size_t i = 0; i < c.objects.size(); i++) {
    const LoadedObject& lo = c.objects[i];
    Napi::Object obj = Napi::Object::New(env);
    obj.Set("path", lo.path);
    obj.Set("base", Hex(lo.base));
    obj.Set("mapped", Hex(lo.mapped));
    std::string id;
    static const char kDigits[] = "0123456789abcdef";
    for (unsigned char byte : lo.build_id) {
      id += kDigits[byte >> 4];
      id += kDigits[byte & 15];
    }
    obj.Set("buildId", id.empty() ? env.Null() : Napi::Value(Napi::String::New(env, id)));
    objects.Set(i, obj);
  }
  o.Set("loadedObjects", objects);
  if (!c.earlier.empty()) {
    Napi::Array earlier = Napi::Array::New(env, c.earlier.size());
    for (size_t i = 0; i < c.earlier.size(); i++) earlier.Set(i, CaptureToJs(env, c.earlier[i], trigger));
    o.Set("earlier", earlier);
    o.Set("sampleIntervalMs", c.sample_interval_ms);
  }
  return o;
}

}  // namespace gmr
