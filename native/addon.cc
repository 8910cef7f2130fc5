// The JavaScript face of the native side: configure the watchdog, prepare
// the reporter environment that formats triggered reports, ask for a
// capture. Captures are handed over as plain objects (convert.h).
// node.h first: it defines NAPI_VERSION, which napi.h would otherwise default.
#include <node.h>
#include <napi.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <v8.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "capture/capture.h"
#include "capture/js_stacks.h"
#include "isolates/registry.h"
#include "isolates/switches.h"
#include "capture/thread_snapshot.h"
#include "codemap/code_map.h"
#include "convert.h"
#include "green/promise_tracker.h"
#include "fatal/fatal_signal.h"
#include "reporter/dispatch.h"
#include "reporter/fallback_report.h"
#include "reporter/reporter_env.h"
#include "util/signal_name.h"
#include "util/test_hooks.h"
#include "watchdog/watchdog.h"

// The Node ABI (NODE_MODULE_VERSION) this binary is built for, as an ELF
// note: the linker puts notes near the start of the file, where
// src/util/elf-abi.ts reads it before the binary is loaded, because loading
// one built for another Node can end the process (an undefined V8 symbol
// met at the first call).
#define GMR_STRINGIFY2(x) #x
#define GMR_STRINGIFY(x) GMR_STRINGIFY2(x)
struct GmrAbiNote {
  uint32_t name_size, desc_size, type;
  char name[4];
  char desc[24];
};
extern "C" __attribute__((used, section(".note.gmr_node_abi"), aligned(4))) const GmrAbiNote gmr_node_abi = {
    4, 24, 1, "GMR", "node-abi=" GMR_STRINGIFY(NODE_MODULE_VERSION)};

namespace gmr {
namespace {

// What a thread-safe function call carries to JavaScript.
struct Delivery {
  std::unique_ptr<Capture> capture;
  Trigger trigger;
};

void CallWithDelivery(Napi::Env env, Napi::Function callback, Delivery* d) {
  std::unique_ptr<Delivery> owned(d);
  if (static_cast<napi_env>(env) == nullptr || callback.IsEmpty()) return;  // being torn down
  if (!owned->capture) {
    callback.Call({Napi::Error::New(env, owned->trigger.detail).Value(), env.Null()});
    return;
  }
  callback.Call({env.Null(), CaptureToJs(env, *owned->capture, owned->trigger)});
}

CaptureSettings SettingsFrom(const Napi::Object& o) {
  CaptureSettings s;
  if (o.Has("jsTimeoutMs")) s.js_timeout_ms = o.Get("jsTimeoutMs").As<Napi::Number>().Int32Value();
  if (o.Has("captureTimeoutMs"))
    s.threads.timeout_ms = o.Get("captureTimeoutMs").As<Napi::Number>().Int32Value();
  if (o.Has("maxHandles")) s.max_handles = o.Get("maxHandles").As<Napi::Number>().Int32Value();
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
  config.stall_threshold_ms = o.Get("stallThresholdMs").As<Napi::Number>().Int32Value();
  config.capture = SettingsFrom(o);
  std::string error = ConfigureWatchdog(config);
  if (!error.empty()) Napi::Error::New(env, error).ThrowAsJavaScriptException();
  return env.Undefined();
}

// configureFatal({ enabled, logDir, serviceName, nodeVersion }): the
// reportOnFatalSignal option (fatal/fatal_signal.h). The destination is also
// the native fallback's (reporter/fallback_report.h), enabled or not.
Napi::Value ConfigureFatal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  FatalConfig config;
  config.enabled = o.Get("enabled").ToBoolean().Value();
  config.log_dir = o.Get("logDir").As<Napi::String>().Utf8Value();
  config.service_name = o.Get("serviceName").As<Napi::String>().Utf8Value();
  config.node_version = o.Get("nodeVersion").As<Napi::String>().Utf8Value();
  ConfigureFallbackReport(config.log_dir, config.service_name, config.node_version);
  std::string error = ConfigureFatalSignals(config);
  if (!error.empty()) Napi::Error::New(env, error).ThrowAsJavaScriptException();
  // Workers running already get their alternate stacks too.
  else if (config.enabled) SetSwitchesEverywhere(CodeMapEnabled(), PromiseTrackingMode());
  return env.Undefined();
}

// prepareReporter(script, data): on the main thread. Triggered reports are
// formatted by `script` in an environment created for each report.
Napi::Value PrepareReporter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  node::Environment* main_env = node::GetCurrentEnvironment(isolate->GetCurrentContext());
  // Unreferenced: it must not keep the process alive; it only runs if the
  // process lives on after its exit hooks ran.
  auto reopen = Napi::ThreadSafeFunction::New(env, Napi::Function(), "guru-meditation reopen", 0, 1,
                                              static_cast<void*>(nullptr),
                                              [](Napi::Env, void*, void*) { ConfigureReporterReopen(nullptr); },
                                              static_cast<void*>(nullptr));
  reopen.Unref(env);
  // A Node built without its startup snapshot (--without-node-snapshot) has
  // none to start environments from.
  Napi::Value variables = env.Global().Get("process").As<Napi::Object>().Get("config").As<Napi::Object>().Get("variables");
  bool snapshot = variables.IsObject() && variables.As<Napi::Object>().Get("node_use_node_snapshot").StrictEquals(Napi::Boolean::New(env, true));
  ConfigureReporterEnv(main_env, info[0].As<Napi::String>().Utf8Value(), snapshot);
  ConfigureReporterReopen([reopen]() mutable {
    reopen.NonBlockingCall([](Napi::Env, Napi::Function) { ReopenReporterEnv(); });
  });
  SetReporterData(info[1].As<Napi::String>().Utf8Value());
  SetReporter(DispatchReport, TakeBackStuckMainReport);
  return env.Undefined();
}

// setReporterData(json): what the reporter needs from setup (options,
// package, configuration snapshot, section names), kept up to date.
// reporterData(): what setup gave the reporter (JSON), null before setup.
Napi::Value ReporterDataJs(const Napi::CallbackInfo& info) {
  std::string data = ReporterData();
  return data.empty() ? info.Env().Null() : Napi::Value(Napi::String::New(info.Env(), data));
}

Napi::Value SetReporterDataJs(const Napi::CallbackInfo& info) {
  SetReporterData(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

// endReporter(): in the reporter environment, once the report is written.
Napi::Value EndReporter(const Napi::CallbackInfo& info) {
  EndReporterEnv();
  return info.Env().Undefined();
}

// finishReporterJob(error | null): in the reporter environment, when its
// script is done with the job; an error has the fallback write the report.
Napi::Value FinishReporterJobJs(const Napi::CallbackInfo& info) {
  FinishReporterJob(info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "");
  return info.Env().Undefined();
}

// takeReporterJob(): in the reporter environment, { capture, data } or null.
Napi::Value TakeReporterJobJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<const Capture> capture;
  Trigger trigger;
  std::string data;
  if (!TakeReporterJob(&capture, &trigger, &data)) return env.Null();
  Napi::Object job = Napi::Object::New(env);
  job.Set("capture", CaptureToJs(env, *capture, trigger));
  job.Set("data", data);
  return job;
}

// attachMainReporter(onReport, pickupMs): on the main thread. A triggered
// report it picks up within pickupMs is written there (see dispatch.h for
// what onReport does and returns); else by a reporter environment.
Napi::Value AttachMainReporterJs(const Napi::CallbackInfo& info) {
  AttachMainReporter(info.Env(), info[0].As<Napi::Function>(), info[1].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// waitWritable(fd, timeoutMs): true once fd can take more bytes, false
// after timeoutMs. poll(2): a plain system call, which a V8 interrupt may
// make whatever the thread was doing (Atomics.wait may not nest in the
// Atomics.wait the interrupt landed in). A capture signal may cut the wait
// short: the caller loops on its own deadline.
Napi::Value WaitWritable(const Napi::CallbackInfo& info) {
  struct pollfd p = {info[0].As<Napi::Number>().Int32Value(), POLLOUT, 0};
  int rc = poll(&p, 1, info[1].As<Napi::Number>().Int32Value());
  return Napi::Boolean::New(info.Env(), rc > 0 || (rc < 0 && errno == EINTR));
}

// testHook(name): the value of a test-only hook (util/test_hooks.h), for
// the JavaScript side to inject failures with; 0 in a release build.
Napi::Value TestHookJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(TestHook(info[0].As<Napi::String>().Utf8Value().c_str())));
}

// mainReportEnded(job, whyNot?): the main thread is done with the report
// its event loop took: written, or why not (a reporter environment writes it).
Napi::Value MainReportEndedJs(const Napi::CallbackInfo& info) {
  MainReportEnded(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()),
                  info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string());
  return info.Env().Undefined();
}

// commitMainReport(job): true when the report is still the main thread's to
// write (and stays so); false when it was taken back.
Napi::Value CommitMainReportJs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), CommitMainReport(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value())));
}

// setMainReportTimeout(ms): how long the event loop has to finish a report it took.
Napi::Value SetMainReportTimeoutJs(const Napi::CallbackInfo& info) {
  SetMainReportTimeout(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// The caller's thread-safe function, as the watchdog reaches it. A worker's
// environment may be freed before its capture is delivered (terminate(),
// process.exit()), and Node 20 and 22 then delete the function whatever
// its thread count (nodejs/node#55706): its finalizer, which runs on the
// owner's thread before that, marks it gone under `mu`, and the watchdog
// calls it only under `mu` while it is not.
struct ApiCaller {
  std::mutex mu;
  bool alive = true;
  Napi::ThreadSafeFunction tsfn;
};

// capture(options, (err, capture) => void): an API report. The calling
// thread's own stack is taken here, synchronously; the others by the watchdog.
Napi::Value CaptureJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CaptureSettings settings = SettingsFrom(info[0].As<Napi::Object>());
  settings.caller_tid = static_cast<int>(syscall(SYS_gettid));
  settings.caller_stack = CurrentJsStack(v8::Isolate::GetCurrent());
  auto caller = std::make_shared<ApiCaller>();
  // Referenced: the caller awaits this capture, so its loop stays alive.
  caller->tsfn = Napi::ThreadSafeFunction::New(
      env, info[1].As<Napi::Function>(), "guru-meditation capture", 0, 1,
      [](Napi::Env, std::shared_ptr<ApiCaller>* held) {
        {
          std::lock_guard<std::mutex> lock((*held)->mu);
          (*held)->alive = false;
        }
        delete held;
      },
      new std::shared_ptr<ApiCaller>(caller));
  RequestCapture(std::move(settings), [caller](std::unique_ptr<Capture> capture, const Trigger& trigger) {
    // Test builds: the delivery late, past a worker's end.
    TestSleepMs(TestHook("api_deliver_delay_ms"));
    auto* d = new Delivery{std::move(capture), trigger};
    std::lock_guard<std::mutex> lock(caller->mu);
    bool ok = caller->alive && caller->tsfn.NonBlockingCall(d, CallWithDelivery) == napi_ok;
    if (!ok) delete d;
    if (caller->alive) caller->tsfn.Release();
    return ok;
  });
  return env.Undefined();
}

// meetNewThreads(): a worker came online; its isolate is met while it runs.
Napi::Value MeetNewThreadsJs(const Napi::CallbackInfo& info) {
  RequestMeetNewIsolates();
  return info.Env().Undefined();
}

Napi::Value ReclaimSignal(const Napi::CallbackInfo& info) {
  ReclaimReportSignal();
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int capture_signal = CaptureSignal();
  char name[16];
  o.Set("captureSignal", capture_signal > 0 ? Napi::Value(Napi::String::New(env, SignalName(capture_signal, name, sizeof name)))
                                            : env.Null());
  o.Set("reportSignal", ReportSignal());
  o.Set("tid", static_cast<double>(syscall(SYS_gettid)));
  o.Set("knownIsolates", static_cast<double>(RegistrySize()));
  // This isolate's heap limit, for the runtime configuration: without
  // loading node:v8 (3 ms in a reporter environment, on the report's path).
  v8::HeapStatistics heap;
  v8::Isolate::GetCurrent()->GetHeapStatistics(&heap);
  o.Set("heapSizeLimit", static_cast<double>(heap.heap_size_limit()));
  o.Set("testHooks", kTestHooks);
  if (kTestHooks) o.Set("testLateCaptureHandlers", static_cast<double>(TestLateCaptureHandlers()));
  if (kTestHooks) o.Set("testFirstContacts", static_cast<double>(TestFirstContacts()));
  return o;
}

// setSwitches(codeMap, trackPromises): the code map switch (on by default,
// the `codeMap` option / GMR_CODE_MAP) and promise tracking (off by default,
// `trackPromises` / GMR_TRACK_PROMISES: false, true, or 'sites'). Every
// isolate follows (isolates/switches.h).
Napi::Value SetSwitchesJs(const Napi::CallbackInfo& info) {
  PromiseTracking track = info[1].IsString() && info[1].As<Napi::String>().Utf8Value() == "sites" ? PromiseTracking::kSites
                          : info[1].ToBoolean().Value()                                            ? PromiseTracking::kCounts
                                                                                                   : PromiseTracking::kOff;
  SetSwitchesEverywhere(info[0].ToBoolean().Value(), track);
  return info.Env().Undefined();
}

// codeMapStats(): what the code maps hold and cost, summed over isolates.
Napi::Value CodeMapStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CodeMapStats s = GetCodeMapStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", CodeMapEnabled());
  o.Set("maps", static_cast<double>(s.maps));
  o.Set("events", static_cast<double>(s.events));
  o.Set("pending", static_cast<double>(s.pending));
  o.Set("indexed", static_cast<double>(s.indexed));
  o.Set("dropped", static_cast<double>(s.dropped));
  o.Set("scripts", static_cast<double>(s.scripts));
  o.Set("bytes", static_cast<double>(s.bytes));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;
  std::call_once(once, [] {
    LoadTestHooks();
    InstallThreadSwitches();
    InstallCaptureHandler(IsolateKnown);
  });
  // Every thread that loads us becomes known, so its stack can be asked for.
  // GMR_CODE_MAP=0 takes effect before the first isolate's map is built
  // (options.ts checks the value and names it if it is bad). Read on the
  // main thread only: getenv elsewhere races the main thread's setenv
  // (process.env writes); a worker follows the process-wide switch.
  bool main_thread = syscall(SYS_gettid) == getpid();
  const char* code_map = main_thread ? getenv("GMR_CODE_MAP") : nullptr;
  if (code_map && (strcmp(code_map, "0") == 0 || strcmp(code_map, "false") == 0)) SetSwitchesEverywhere(false, PromiseTrackingMode());
  RegisterCurrentIsolate();
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("configureFatal", Napi::Function::New(env, ConfigureFatal));
  exports.Set("prepareReporter", Napi::Function::New(env, PrepareReporter));
  exports.Set("setReporterData", Napi::Function::New(env, SetReporterDataJs));
  exports.Set("reporterData", Napi::Function::New(env, ReporterDataJs));
  exports.Set("takeReporterJob", Napi::Function::New(env, TakeReporterJobJs));
  exports.Set("finishReporterJob", Napi::Function::New(env, FinishReporterJobJs));
  exports.Set("endReporter", Napi::Function::New(env, EndReporter));
  exports.Set("attachMainReporter", Napi::Function::New(env, AttachMainReporterJs));
  exports.Set("mainReportEnded", Napi::Function::New(env, MainReportEndedJs));
  exports.Set("commitMainReport", Napi::Function::New(env, CommitMainReportJs));
  exports.Set("setMainReportTimeout", Napi::Function::New(env, SetMainReportTimeoutJs));
  exports.Set("waitWritable", Napi::Function::New(env, WaitWritable));
  exports.Set("capture", Napi::Function::New(env, CaptureJs));
  exports.Set("meetNewThreads", Napi::Function::New(env, MeetNewThreadsJs));
  exports.Set("reclaimSignal", Napi::Function::New(env, ReclaimSignal));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("testHook", Napi::Function::New(env, TestHookJs));
  exports.Set("setSwitches", Napi::Function::New(env, SetSwitchesJs));
  exports.Set("codeMapStats", Napi::Function::New(env, CodeMapStatsJs));
  return exports;
}

}  // namespace
}  // namespace gmr

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return gmr::Init(env, exports); }
NODE_API_MODULE(guru_meditation, InitAddon)
