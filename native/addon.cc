// The JavaScript face of the native side: configure the watchdog, attach the
// reporter that formats triggered reports, ask for a capture. Captures are
// handed over as plain objects; all formatting is TypeScript's.
#include <napi.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <v8.h>

#include <cstdio>
#include <memory>
#include <mutex>

#include "capture/capture.h"
#include "capture/js_stacks.h"
#include "capture/thread_capture.h"
#include "watchdog/watchdog.h"

namespace gmr {
namespace {

int g_capture_signal = -1;  // the real-time signal threads are captured with

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

std::string SignalName(int sig) {
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  return std::to_string(sig);
}

Napi::Array JsFrames(Napi::Env env, const std::vector<JsFrame>& frames) {
  Napi::Array out = Napi::Array::New(env, frames.size());
  for (size_t i = 0; i < frames.size(); i++) {
    Napi::Object f = Napi::Object::New(env);
    f.Set("function", frames[i].function);
    f.Set("file", frames[i].file);
    f.Set("line", frames[i].line);
    f.Set("column", frames[i].column);
    out.Set(i, f);
  }
  return out;
}

Napi::Object ThreadToJs(Napi::Env env, const ThreadCapture& t, int pid) {
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
  o.Set("missingReason", s.missing_reason);
  o.Set("interruptedUs", static_cast<double>(s.interrupted_ns) / 1000.0);
  o.Set("hasIsolate", s.v8.isolate != nullptr);
  o.Set("isolate", s.v8.isolate ? Hex(reinterpret_cast<uintptr_t>(s.v8.isolate)) : "");
  const char* vm = VmStateName(s.v8.vm_state);
  o.Set("vmState", vm ? Napi::Value(Napi::String::New(env, vm)) : env.Null());
  o.Set("jsFrameCount", static_cast<double>(s.v8.frame_count));
  o.Set("jsRequested", t.js_requested);
  o.Set("jsAnswered", t.js.answered);
  o.Set("jsAnsweredAfterUs", static_cast<double>(t.js.answered_after_us));
  o.Set("javascript", JsFrames(env, t.js.frames));
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
    native.Set(i, n);
  }
  o.Set("native", native);
  return o;
}

Napi::Object CaptureToJs(Napi::Env env, const Capture& c, const Trigger& trigger) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("startedUnixMs", static_cast<double>(c.started_unix_ms));
  o.Set("signalPhaseUs", static_cast<double>(c.signal_phase_us));
  o.Set("jsPhaseUs", static_cast<double>(c.js_phase_us));
  o.Set("totalUs", static_cast<double>(c.total_us));
  o.Set("captureSignal", g_capture_signal > 0 ? Napi::Value(Napi::String::New(env, SignalName(g_capture_signal)))
                                              : env.Null());
  Napi::Object tr = Napi::Object::New(env);
  tr.Set("kind", trigger.kind);
  tr.Set("detail", trigger.detail);
  tr.Set("coalesced", trigger.coalesced);
  o.Set("trigger", tr);
  int pid = getpid();
  Napi::Array threads = Napi::Array::New(env, c.threads.size());
  for (size_t i = 0; i < c.threads.size(); i++) threads.Set(i, ThreadToJs(env, c.threads[i], pid));
  o.Set("threads", threads);
  return o;
}

// What a thread-safe function call carries to JavaScript.
struct Delivery {
  std::unique_ptr<Capture> capture;
  Trigger trigger;
};

void CallWithDelivery(Napi::Env env, Napi::Function callback, Delivery* d) {
  std::unique_ptr<Delivery> owned(d);
  if (!env || !callback) return;  // the thread-safe function is being torn down
  if (!owned->capture) {
    callback.Call({Napi::Error::New(env, owned->trigger.detail).Value(), env.Null()});
    return;
  }
  callback.Call({env.Null(), CaptureToJs(env, *owned->capture, owned->trigger)});
}

Deliver DeliverTo(Napi::ThreadSafeFunction tsfn) {
  return [tsfn](std::unique_ptr<Capture> capture, const Trigger& trigger) mutable {
    auto* d = new Delivery{std::move(capture), trigger};
    if (tsfn.NonBlockingCall(d, CallWithDelivery) != napi_ok) {
      delete d;
      return false;
    }
    return true;
  };
}

CaptureSettings SettingsFrom(const Napi::Object& o) {
  CaptureSettings s;
  if (o.Has("jsTimeoutMs")) s.js_timeout_ms = o.Get("jsTimeoutMs").As<Napi::Number>().Int32Value();
  if (o.Has("captureTimeoutMs"))
    s.threads.timeout_ms = o.Get("captureTimeoutMs").As<Napi::Number>().Int32Value();
  return s;
}

// configure({ signal, triggerFile, pollIntervalMs, jsTimeoutMs, captureTimeoutMs })
Napi::Value Configure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  WatchdogConfig config;
  config.report_signal = o.Get("signal").As<Napi::Number>().Int32Value();
  config.trigger_file = o.Get("triggerFile").As<Napi::String>().Utf8Value();
  config.poll_interval_ms = o.Get("pollIntervalMs").As<Napi::Number>().Int32Value();
  config.capture = SettingsFrom(o);
  std::string error = ConfigureWatchdog(config);
  if (!error.empty()) Napi::Error::New(env, error).ThrowAsJavaScriptException();
  return env.Undefined();
}

// The reporter's thread-safe function, guarded so that a detach (its thread
// going away) and a delivery never overlap.
std::mutex g_reporter_mu;
bool g_reporter_attached = false;

void OnReporterFinalized(Napi::Env, void*, void*) {
  SetReporter(nullptr);
  std::lock_guard<std::mutex> lock(g_reporter_mu);
  g_reporter_attached = false;
}

// attachReporter((err, capture) => void): called on this thread for every
// triggered report. The thread must call reportDone() when it is written.
Napi::Value AttachReporter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  {
    std::lock_guard<std::mutex> lock(g_reporter_mu);
    if (g_reporter_attached) {
      Napi::Error::New(env, "a reporter is already attached").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    g_reporter_attached = true;
  }
  auto tsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "guru-meditation reporter",
                                            0, 1, static_cast<void*>(nullptr), OnReporterFinalized,
                                            static_cast<void*>(nullptr));
  // Referenced: it keeps the reporter's thread alive, waiting for reports.
  SetReporter(DeliverTo(tsfn));
  return env.Undefined();
}

Napi::Value ReportDoneJs(const Napi::CallbackInfo& info) {
  ReportDone();
  return info.Env().Undefined();
}

// capture(options, (err, capture) => void): an API report. The calling
// thread's own stack is taken here, synchronously; the others by the watchdog.
Napi::Value CaptureJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CaptureSettings settings = SettingsFrom(info[0].As<Napi::Object>());
  settings.caller_tid = static_cast<int>(syscall(SYS_gettid));
  settings.caller_stack = CurrentJsStack(v8::Isolate::GetCurrent());
  // Referenced: the caller awaits this capture, so its loop stays alive.
  auto tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "guru-meditation capture", 0, 1);
  RequestCapture(std::move(settings), [tsfn](std::unique_ptr<Capture> capture, const Trigger& trigger) mutable {
    bool ok = DeliverTo(tsfn)(std::move(capture), trigger);
    tsfn.Release();
    return ok;
  });
  return env.Undefined();
}

Napi::Value ReclaimSignal(const Napi::CallbackInfo& info) {
  ReclaimReportSignal();
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("captureSignal", g_capture_signal > 0 ? Napi::Value(Napi::String::New(env, SignalName(g_capture_signal)))
                                              : env.Null());
  o.Set("reportSignal", ReportSignal());
  o.Set("tid", static_cast<double>(syscall(SYS_gettid)));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, [] { g_capture_signal = InstallCaptureHandler(IsolateKnown); });
  // Every thread that loads us becomes known, so its stack can be asked for.
  RegisterCurrentIsolate();
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("attachReporter", Napi::Function::New(env, AttachReporter));
  exports.Set("reportDone", Napi::Function::New(env, ReportDoneJs));
  exports.Set("capture", Napi::Function::New(env, CaptureJs));
  exports.Set("reclaimSignal", Napi::Function::New(env, ReclaimSignal));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace
}  // namespace gmr

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return gmr::Init(env, exports); }
NODE_API_MODULE(guru_meditation, InitAddon)
