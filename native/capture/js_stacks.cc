#include "js_stacks.h"

#include <node.h>
#include <uv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <v8.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "../codemap/code_map.h"
#include "../fatal/fatal_signal.h"
#include "../green/promise_tracker.h"
#include "../green/timer_tracker.h"
#include "thread_identity.h"

namespace gmr {
namespace {

constexpr int kMaxKnown = 1024;
constexpr int kMaxFrames = 64;

// Read by the signal handler: plain atomics, never resized.
std::atomic<v8::Isolate*> g_known[kMaxKnown];

struct Entry {
  v8::Isolate* isolate;
  int tid;                     // the thread the isolate runs on
  bool interrupt_outstanding;  // one pending interrupt per isolate, at most
  // Read on its thread; thread_id -1 until then (a worker met while it
  // still bootstraps cannot tell it yet: it is asked again, see
  // RequestMissingIdentities).
  ThreadIdentity identity;
  // Asked again for its identity, or to install timer tracking (which a
  // bootstrapping worker cannot yet): one such interrupt outstanding.
  bool followup_requested;
  uv_loop_t* loop;             // its environment's event loop; nullptr for the reporter's
  // Its node::Environment: the handles Node embeds in it (the one timer of
  // all JavaScript timers, the immediates' check and idle) lie inside it.
  const void* environment;
};

// Heap-allocated and never destroyed: the watchdog may still run while the
// process exits and static destructors run.
std::mutex& RegistryMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::vector<Entry*>& Registry() {
  static auto* entries = new std::vector<Entry*>;
  return *entries;
}
std::mutex& AnswerMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::condition_variable& Answered() {
  static auto* cv = new std::condition_variable;
  return *cv;
}

Entry* FindEntry(v8::Isolate* isolate) {
  for (Entry* e : Registry())
    if (e->isolate == isolate) return e;
  return nullptr;
}

// Runs on the isolate's own thread in FreeEnvironment, before the isolate is
// disposed; holding the registry lock here orders it after any
// RequestInterrupt the watchdog is making on this isolate.
// The entry is freed here: the hook runs once, and everything else reaches
// entries through the registry, under its lock.
void OnEnvironmentCleanup(void* arg) {
  auto* entry = static_cast<Entry*>(arg);
  v8::Isolate* isolate = entry->isolate;
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    for (auto& slot : g_known) {
      v8::Isolate* expected = isolate;
      if (slot.compare_exchange_strong(expected, nullptr)) break;
    }
    auto& registry = Registry();
    registry.erase(std::remove(registry.begin(), registry.end(), entry), registry.end());
    delete entry;
  }
  // The isolate is about to go: its code event handler and promise hook
  // must go first.
  StopCodeMap(isolate);
  StopPromiseTracking(isolate);
  ForgetTimers(isolate);
  ReleaseFatalAltStack();
}

// The reporter's environment (native/reporter/reporter_env.cc names its
// thread so) lives for one report: it gets no code map.
bool OnReporterThread() {
  char name[17] = {0};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  return strcmp(name, "gmr-reporter") == 0;
}

// On the isolate's thread: the code map, promise tracking and the fatal
// handlers' alternate stack follow their process-wide switches.
void FollowSwitches(v8::Isolate* isolate) {
  if (OnReporterThread()) return;
  if (!CodeMapEnabled()) StopCodeMap(isolate);
  else StartCodeMap(isolate);
  FollowPromiseTracking(isolate);
  FollowTimerTracking(isolate);
  FollowFatalAltStack();
}

void OnSwitch(v8::Isolate* isolate, void*) { FollowSwitches(isolate); }

void PublishKnown(v8::Isolate* isolate) {
  for (auto& slot : g_known) {
    v8::Isolate* expected = nullptr;
    if (slot.compare_exchange_strong(expected, isolate)) break;
  }
}

// On the isolate's thread, inside a node environment's context. False when
// the thread has none (no entry).
bool RegisterOnThread(v8::Isolate* isolate) {
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Entry* e = FindEntry(isolate);
    if (e && e->identity.thread_id >= 0) return true;
  }
  if (!isolate->InContext()) return false;
  if (!node::GetCurrentEnvironment(isolate->GetCurrentContext())) return false;
  // The main thread is threadId 0: no script (and no module load) on the
  // application's start-up path. The reporter's environment is nobody's worker.
  bool main_thread = syscall(SYS_gettid) == getpid();
  bool reporter = OnReporterThread();
  ThreadIdentity identity = main_thread ? ThreadIdentity{0, ""} : reporter ? ThreadIdentity{} : ReadThreadIdentity(isolate);
  Entry* created = nullptr;
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Entry* e = FindEntry(isolate);
    // A worker still bootstrapping stays unknown: the next contact holds it
    // and asks again (a meeting round while workers start, or a report).
    if (!e && identity.thread_id == kIdentityNotYet) return false;
    if (!e) {
      uv_loop_t* loop = reporter ? nullptr : node::GetCurrentEventLoop(isolate);
      const void* environment = node::GetCurrentEnvironment(isolate->GetCurrentContext());
      e = created = new Entry{isolate, static_cast<int>(syscall(SYS_gettid)), false, {}, false, loop, environment};
      Registry().push_back(e);
    }
    if (identity.thread_id != kIdentityNotYet) e->identity = identity;
    e->followup_requested = false;
    if (created) PublishKnown(isolate);
  }
  if (created) node::AddEnvironmentCleanupHook(isolate, OnEnvironmentCleanup, created);
  return true;
}

JsFrame ToFrame(v8::Isolate* isolate, v8::Local<v8::StackFrame> frame) {
  JsFrame out;
  v8::String::Utf8Value fn(isolate, frame->GetFunctionName());
  v8::String::Utf8Value file(isolate, frame->GetScriptNameOrSourceURL());
  out.function = *fn && fn.length() ? *fn : "";
  out.file = *file ? *file : "";
  out.line = frame->GetLineNumber();
  out.column = frame->GetColumn();
  return out;
}

}  // namespace

// Shared by the watchdog and the interrupt callback. Whichever of
// "answered" and "abandoned" happens second frees it.
struct JsStackRound::Request {
  enum State { kPending, kAnswered, kAbandoned };
  std::atomic<int> state{kPending};
  v8::Isolate* isolate = nullptr;
  std::chrono::steady_clock::time_point posted;
  JsStack stack;
};

namespace {

void OnInterrupt(v8::Isolate* isolate, void* data) {
  auto* request = static_cast<JsStackRound::Request*>(data);
  bool registered = RegisterOnThread(isolate);
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    if (Entry* e = FindEntry(isolate)) e->interrupt_outstanding = false;
  }
  int expected = JsStackRound::Request::kPending;
  if (request->state.load() == expected) {
    request->stack = CurrentJsStack(isolate);
    request->stack.answered_after_us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - request->posted).count();
  }
  {
    std::lock_guard<std::mutex> lock(AnswerMutex());
    if (!request->state.compare_exchange_strong(expected, JsStackRound::Request::kAnswered)) {
      delete request;  // the round gave up on us
    } else {
      Answered().notify_all();
    }
  }
  // A worker that never loaded the library gets its code map now, after it
  // answered (enabling replays all existing code: not on the report's time).
  // Only once registered: the cleanup hook that registration adds is what
  // stops the map before the isolate goes.
  if (registered) FollowSwitches(isolate);
}

}  // namespace

// Async-signal-safe (called from the capture signal's handler): acquire
// loads over the fixed table g_known, nothing else.
bool IsolateKnown(v8::Isolate* isolate) {
  for (auto& slot : g_known)
    if (slot.load(std::memory_order_acquire) == isolate) return true;
  return false;
}

void RegisterCurrentIsolate() {
  v8::Isolate* isolate = v8::Isolate::TryGetCurrent();
  if (!isolate) return;
  if (RegisterOnThread(isolate)) FollowSwitches(isolate);
}

std::vector<LoopProgress> ReadLoopProgress() {
  std::vector<LoopProgress> out;
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (Entry* e : Registry()) {
    if (!e->loop) continue;
    // Read while the loop's thread runs: plain word reads of counters that
    // only its thread writes; a stale value only delays a stall report.
    uv_metrics_t metrics;
    if (uv_metrics_info(e->loop, &metrics) != 0) continue;
    out.push_back({e->tid, e->identity.thread_id, metrics.loop_count, uv_backend_fd(e->loop)});
  }
  return out;
}

std::vector<LoopInfo> WalkLoops(size_t max_details) {
  std::vector<LoopInfo> out;
  std::vector<v8::Isolate*> isolates;
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    for (Entry* e : Registry()) {
      if (!e->loop) continue;
      LoopInfo info = WalkLoop(e->loop, e->environment, max_details);
      info.tid = e->tid;
      info.thread_id = e->identity.thread_id;
      info.waiting = WaitingOnLoop(e->tid, uv_backend_fd(e->loop));
      out.push_back(std::move(info));
      isolates.push_back(e->isolate);
    }
  }
  // Outside the registry lock, which every JavaScript thread answering a
  // report's interrupt takes: the trackers' tables have locks of their own
  // (an isolate gone meanwhile has none left), and naming promise sites may
  // wait for a code map's lock.
  for (size_t i = 0; i < out.size(); i++) {
    out[i].promises = SummarizePromises(isolates[i], max_details);
    out[i].timers = SummarizeTimers(isolates[i], max_details);
  }
  return out;
}

size_t RegistrySize() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  return Registry().size();
}

v8::Isolate* KnownIsolateOn(int tid) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (Entry* e : Registry())
    if (e->tid == tid && e->loop) return e->isolate;
  return nullptr;
}

ThreadIdentity IdentityOf(v8::Isolate* isolate, int tid) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Entry* e = FindEntry(isolate);
  return e && e->tid == tid ? e->identity : ThreadIdentity{};
}

namespace {
void OnIdentityInterrupt(v8::Isolate* isolate, void*) { RegisterOnThread(isolate); }

void OnSwitchRequested(v8::Isolate* isolate, void*) {
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    if (Entry* e = FindEntry(isolate)) e->followup_requested = false;
  }
  FollowSwitches(isolate);
}
}  // namespace

void RequestMissingIdentities() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (Entry* e : Registry()) {
    if (!e->loop || e->followup_requested) continue;
    bool identity = e->identity.thread_id < 0;
    bool timers = !identity && TimerTrackingPending(e->isolate);
    if (!identity && !timers) continue;
    e->followup_requested = true;
    // V8's interrupt, not node::RequestInterrupt: node runs those where
    // JavaScript is disallowed (the identity script would abort the
    // process). An idle worker answers at its next JavaScript.
    e->isolate->RequestInterrupt(identity ? OnIdentityInterrupt : OnSwitchRequested, nullptr);
  }
}

bool SwitchesPending() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (Entry* e : Registry())
    if (e->loop && TimerTrackingPending(e->isolate)) return true;
  return false;
}

bool InterruptIfAlive(v8::Isolate* isolate, void (*callback)(v8::Isolate*, void*), void* data) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  if (!FindEntry(isolate)) return false;
  isolate->RequestInterrupt(callback, data);
  return true;
}

void SetSwitchesEverywhere(bool code_map, bool track_promises) {
  SetCodeMapEnabled(code_map);
  SetPromiseTrackingEnabled(track_promises);
  v8::Isolate* self = v8::Isolate::TryGetCurrent();
  if (self) FollowSwitches(self);
  // Other isolates switch on their own thread, at their next interrupt check.
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (Entry* e : Registry())
    if (e->isolate != self) e->isolate->RequestInterrupt(OnSwitch, nullptr);
}

JsStack CurrentJsStack(v8::Isolate* isolate) {
  JsStack out;
  out.answered = true;
  v8::HandleScope scope(isolate);
  v8::Local<v8::StackTrace> trace =
      v8::StackTrace::CurrentStackTrace(isolate, kMaxFrames, v8::StackTrace::kDetailed);
  for (int i = 0; i < trace->GetFrameCount(); i++)
    out.frames.push_back(ToFrame(isolate, trace->GetFrame(isolate, i)));
  return out;
}

JsStackRound::JsStackRound() = default;

JsStackRound::~JsStackRound() {
  std::lock_guard<std::mutex> lock(AnswerMutex());
  for (auto& [isolate, request] : requests_) {
    int expected = Request::kPending;
    if (!request->state.compare_exchange_strong(expected, Request::kAbandoned)) delete request;
  }
}

void JsStackRound::Post(v8::Isolate* isolate, bool known) {
  if (requests_.count(isolate)) return;
  auto* request = new Request;
  request->isolate = isolate;
  request->posted = std::chrono::steady_clock::now();
  if (known) {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Entry* e = FindEntry(isolate);
    if (!e || e->interrupt_outstanding) {
      delete request;  // gone, or still busy with an earlier report's request
      return;
    }
    e->interrupt_outstanding = true;
    isolate->RequestInterrupt(OnInterrupt, request);
  } else {
    // The caller holds the isolate's thread in the capture handler.
    isolate->RequestInterrupt(OnInterrupt, request);
  }
  requests_[isolate] = request;
}

bool JsStackRound::Posted(v8::Isolate* isolate) const { return requests_.count(isolate) > 0; }

void JsStackRound::Wait(int timeout_ms, const std::vector<v8::Isolate*>& wanted) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lock(AnswerMutex());
  Answered().wait_until(lock, deadline, [&] {
    for (v8::Isolate* isolate : wanted) {
      auto it = requests_.find(isolate);
      if (it != requests_.end() && it->second->state.load() == Request::kPending) return false;
    }
    return true;
  });
  for (auto it = requests_.begin(); it != requests_.end();) {
    Request* request = it->second;
    int expected = Request::kPending;
    if (request->state.compare_exchange_strong(expected, Request::kAbandoned)) {
      ++it;  // left to its callback, which frees it
      continue;
    }
    results_[it->first] = std::move(request->stack);
    delete request;
    it = requests_.erase(it);
  }
  // What remains are abandoned requests owned by their callbacks.
  requests_.clear();
}

const JsStack* JsStackRound::Result(v8::Isolate* isolate) const {
  auto it = results_.find(isolate);
  return it == results_.end() ? nullptr : &it->second;
}

}  // namespace gmr
