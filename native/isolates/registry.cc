#include "registry.h"

#include <node.h>
#include <uv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <v8.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>


namespace gmr {
namespace {

constexpr int kMaxKnown = 1024;

// Read by the signal handler: plain atomics, never resized.
std::atomic<v8::Isolate*> g_known[kMaxKnown];

ThreadHooks g_hooks{};

struct Entry {
  v8::Isolate* isolate;
  int tid;                     // the thread the isolate runs on
  bool interrupt_outstanding;  // one pending JavaScript-stack interrupt per isolate, at most
  // Read on its thread; thread_id -1 until then (a worker met while it
  // still bootstraps cannot tell it yet: it is asked again, see
  // RequestMissingIdentities).
  ThreadIdentity identity;
  // Asked again for its identity, or to follow a switch (which a
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
  // The isolate is about to go: what it switched on must go first.
  if (g_hooks.cleanup) g_hooks.cleanup(isolate);
}

void PublishKnown(v8::Isolate* isolate) {
  for (auto& slot : g_known) {
    v8::Isolate* expected = nullptr;
    if (slot.compare_exchange_strong(expected, isolate)) break;
  }
}

void OnIdentityInterrupt(v8::Isolate* isolate, void*) { RegisterOnThread(isolate); }

void OnSwitchRequested(v8::Isolate* isolate, void*) {
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    if (Entry* e = FindEntry(isolate)) e->followup_requested = false;
  }
  FollowSwitchesHere(isolate);
}

}  // namespace

void SetThreadHooks(ThreadHooks hooks) { g_hooks = hooks; }

// Async-signal-safe (called from the capture signal's handler): acquire
// loads over the fixed table g_known, nothing else.
bool IsolateKnown(v8::Isolate* isolate) {
  for (auto& slot : g_known)
    if (slot.load(std::memory_order_acquire) == isolate) return true;
  return false;
}

bool OnReporterThread() {
  char name[17] = {0};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  return strcmp(name, "gmr-reporter") == 0;
}

void FollowSwitchesHere(v8::Isolate* isolate) {
  if (g_hooks.follow) g_hooks.follow(isolate);
}

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

void RegisterCurrentIsolate() {
  v8::Isolate* isolate = v8::Isolate::TryGetCurrent();
  if (!isolate) return;
  if (RegisterOnThread(isolate)) FollowSwitchesHere(isolate);
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

void ForEachLoop(const std::function<void(const LoopOwner&)>& fn) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (Entry* e : Registry())
    if (e->loop) fn({e->isolate, e->tid, e->identity.thread_id, e->loop, e->environment});
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

void RequestMissingIdentities() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (Entry* e : Registry()) {
    if (!e->loop || e->followup_requested) continue;
    bool identity = e->identity.thread_id < 0;
    bool pending = !identity && g_hooks.pending && g_hooks.pending(e->isolate);
    if (!identity && !pending) continue;
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
    if (e->loop && g_hooks.pending && g_hooks.pending(e->isolate)) return true;
  return false;
}

bool InterruptIfAlive(v8::Isolate* isolate, void (*callback)(v8::Isolate*, void*), void* data) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  if (!FindEntry(isolate)) return false;
  isolate->RequestInterrupt(callback, data);
  return true;
}

bool InterruptOnce(v8::Isolate* isolate, void (*callback)(v8::Isolate*, void*), void* data) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Entry* e = FindEntry(isolate);
  if (!e || e->interrupt_outstanding) return false;
  e->interrupt_outstanding = true;
  isolate->RequestInterrupt(callback, data);
  return true;
}

void InterruptAnswered(v8::Isolate* isolate) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  if (Entry* e = FindEntry(isolate)) e->interrupt_outstanding = false;
}

void InterruptAllBut(v8::Isolate* except, void (*callback)(v8::Isolate*, void*)) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (Entry* e : Registry())
    if (e->isolate != except) e->isolate->RequestInterrupt(callback, nullptr);
}

}  // namespace gmr
