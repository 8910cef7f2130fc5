#include "promise_tracker.h"

#include <node.h>
#include <uv.h>
#include <v8.h>
#include <v8-profiler.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "../codemap/code_map.h"
#include "../isolates/own_context.h"

// The hooks read libuv's loop time through a SharedArrayBuffer laid over
// uv_loop_t::time: memory V8's sandbox would not take. Node builds V8
// without it (its common.gypi defines V8_ENABLE_SANDBOX when it does).
#ifdef V8_ENABLE_SANDBOX
#error "guru-meditation: promise tracking needs a Node built without V8's sandbox"
#endif

namespace gmr {
namespace {

// The table a thread's hooks write and the watchdog reads (little-endian):
//   int32  head[4]              [0]: pending promises past the capacity
//   uint32 stamps[kPromiseSlots] libuv loop time (ms, low 32 bits) | 1 of a
//                                pending promise; 0: a free slot
//   uint64 sites[2 * kPromiseSlots]  mode 'sites' only: the code addresses
//                                of the two JavaScript frames under the hook
constexpr size_t kHeadBytes = 16;
constexpr size_t kStampsBytes = 4 * size_t{kPromiseSlots};
constexpr size_t kSitesBytes = 16 * size_t{kPromiseSlots};

std::atomic<int> g_mode{0};

struct Tracker {
  PromiseTracking mode = PromiseTracking::kOff;  // what its hooks do now
  bool busy = false;  // being installed or removed (that runs JavaScript)
  // Shared with the SharedArrayBuffer the hooks write: a summary holds a
  // copy while it reads, so the memory outlives the thread if need be.
  std::shared_ptr<v8::BackingStore> table;
  // The hooks' remover; touched only on the isolate's thread.
  v8::Global<v8::Function> stop;
};

// By isolate; heap-allocated, never destroyed (the watchdog may read them
// while static destructors run).
std::mutex& TrackersMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<v8::Isolate*, Tracker>& Trackers() {
  static auto* trackers = new std::map<v8::Isolate*, Tracker>;
  return *trackers;
}

// V8's embedded builtins (the Promise constructor, Await, ...): frames the
// sample gives but no JavaScript function owns. The same blob for every
// isolate, set at the first install.
std::atomic<uintptr_t> g_builtins_start{0}, g_builtins_end{0};

// sample(slot), mode 'sites': called by the init hook. Keeps the first two
// JavaScript frames under the hook itself: the creating function's, or Node's
// initAll dispatcher when other hooks run beside ours (the summary picks).
// Builtins are skipped: `new Promise` runs in one. No allocation, no lock:
// the slot is the calling thread's.
void Sample(const v8::FunctionCallbackInfo<v8::Value>& info) {
  auto* sites = static_cast<uint64_t*>(info.Data().As<v8::External>()->Value());
  if (!info[0]->IsUint32()) return;
  uint32_t slot = info[0].As<v8::Uint32>()->Value();
  if (slot >= kPromiseSlots) return;
  constexpr size_t kDepth = 6;
  void* frames[kDepth] = {};
  v8::SampleInfo sample{};
  // The sampler walks from the registers it is given: this very frame, whose
  // callers lead through V8's API exit frame into the JavaScript frames.
  v8::RegisterState state;
  state.pc = __builtin_return_address(0);
  state.fp = __builtin_frame_address(0);
  state.sp = __builtin_frame_address(0);
  info.GetIsolate()->GetStackSample(state, frames, kDepth, &sample);
  uintptr_t start = g_builtins_start.load(std::memory_order_relaxed), end = g_builtins_end.load(std::memory_order_relaxed);
  uintptr_t kept[3] = {0, 0, 0};  // the hook's own frame, then two
  size_t n = 0;
  for (size_t i = 0; i < sample.frames_count && i < kDepth && n < 3; i++) {
    auto pc = reinterpret_cast<uintptr_t>(frames[i]);
    if (pc >= start && pc < end) continue;
    kept[n++] = pc;
  }
  // Relaxed stores: the watchdog may be reading.
  __atomic_store_n(&sites[2 * slot], kept[1], __ATOMIC_RELAXED);
  __atomic_store_n(&sites[2 * slot + 1], kept[2], __ATOMIC_RELAXED);
}

// The hooks, run in the thread's own context: Node's public promiseHooks
// (process.getBuiltinModule: Node >= 20.16), so they join Node's own users of
// V8's per-context hooks rather than replace them. A fresh symbol per
// install: promises stamped by an earlier one are not freed into this table.
// The free list starts empty and slots are taken in order, so only the pages
// of slots ever used are touched. Returns the remover, or undefined.
const char kInstall[] = R"js((function (table, clock, sample, slots) {
  const v8 = typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('v8') : undefined
  if (!v8 || !v8.promiseHooks) return undefined
  const head = new Int32Array(table, 0, 4)
  const stamps = new Uint32Array(table, 16, slots)
  const now = new Uint32Array(clock, 0, 1)
  const free = new Uint16Array(slots)
  let nfree = 0
  let next = 0
  // The slot rides on the promise in a private field, put there by a
  // constructor that returns the promise as its `this`: invisible to
  // util.inspect, spreads, deepStrictEqual and own-key listings, and never
  // looking up the prototype chain (a Proxy there is not asked). Each
  // install has its own class, so its own private name.
  class Base { constructor (o) { return o } }
  class Slot extends Base {
    #s
    constructor (o, s) { super(o); this.#s = s }
    static of (o) { return #s in o ? o.#s : undefined }
  }
  const init = sample === undefined
    ? function init (p) {
      let s
      if (nfree > 0) s = free[--nfree]
      else if (next < slots) s = next++
      else { head[0]++; new Slot(p, -1); return }
      stamps[s] = now[0] | 1
      new Slot(p, s)
    }
    : function init (p) {
      let s
      if (nfree > 0) s = free[--nfree]
      else if (next < slots) s = next++
      else { head[0]++; new Slot(p, -1); return }
      stamps[s] = now[0] | 1
      new Slot(p, s)
      sample(s)
    }
  function settled (p) {
    const s = Slot.of(p)
    if (s === undefined) return
    if (s < 0) head[0]--
    else if (stamps[s] !== 0) { stamps[s] = 0; free[nfree++] = s }
  }
  return v8.promiseHooks.createHook({ init, settled })
}))js";

void FreeTable(void* data, size_t, void*) { free(data); }

// Installs the hooks; false when it could not (asked again later).
bool Install(v8::Isolate* isolate, PromiseTracking mode, Tracker* out) {
  uv_loop_t* loop = node::GetCurrentEventLoop(isolate);
  if (!loop) return false;
  return InOwnContext(isolate, false, [&](v8::Local<v8::Context> context, v8::TryCatch&) {
    size_t bytes = kHeadBytes + kStampsBytes + (mode == PromiseTracking::kSites ? kSitesBytes : 0);
    // calloc: zeroed, and pages of a table this size are only touched when used.
    void* data = calloc(1, bytes);
    if (!data) return false;
    std::shared_ptr<v8::BackingStore> table = v8::SharedArrayBuffer::NewBackingStore(data, bytes, FreeTable, nullptr);
    // The loop's clock, read where libuv keeps it: libuv sets it at each
    // turn and on waking, Node also before running timers. The loop outlives
    // every JavaScript run on its thread.
    std::shared_ptr<v8::BackingStore> clock =
        v8::SharedArrayBuffer::NewBackingStore(&loop->time, sizeof loop->time, v8::BackingStore::EmptyDeleter, nullptr);
    v8::Local<v8::Value> fn, stop;
    v8::Local<v8::Value> sample = v8::Undefined(isolate);
    if (mode == PromiseTracking::kSites) {
      const void* blob = nullptr;
      size_t blob_bytes = 0;
      isolate->GetEmbeddedCodeRange(&blob, &blob_bytes);
      g_builtins_start = reinterpret_cast<uintptr_t>(blob);
      g_builtins_end = reinterpret_cast<uintptr_t>(blob) + blob_bytes;
      v8::Local<v8::Function> f;
      auto* sites = reinterpret_cast<uint64_t*>(static_cast<char*>(data) + kHeadBytes + kStampsBytes);
      if (!v8::Function::New(context, Sample, v8::External::New(isolate, sites)).ToLocal(&f)) return false;
      sample = f;
    }
    if (!RunScript(isolate, context, kInstall).ToLocal(&fn) || !fn->IsFunction()) return false;
    v8::Local<v8::Value> argv[] = {v8::SharedArrayBuffer::New(isolate, table), v8::SharedArrayBuffer::New(isolate, clock), sample,
                                   v8::Integer::NewFromUnsigned(isolate, kPromiseSlots)};
    if (!fn.As<v8::Function>()->Call(context, v8::Undefined(isolate), 4, argv).ToLocal(&stop) || !stop->IsFunction()) return false;
    out->table = std::move(table);
    out->stop.Reset(isolate, stop.As<v8::Function>());
    return true;
  });
}

// Removes the hooks; false when it could not (asked again later).
bool Remove(v8::Isolate* isolate, v8::Global<v8::Function>* stop) {
  return InOwnContext(isolate, false, [&](v8::Local<v8::Context> context, v8::TryCatch&) {
    v8::Local<v8::Value> result;
    return stop->Get(isolate)->Call(context, v8::Undefined(isolate), 0, nullptr).ToLocal(&result);
  });
}

uint64_t NowMs() { return uv_hrtime() / 1000000; }

// Age of a stamp: both are the monotonic clock's ms (libuv's loop time is
// the coarse one, a few ms behind at most), compared in 32 bits: right for
// ages under 24 days.
uint64_t AgeMs(uint32_t now, uint32_t stamp) {
  uint32_t age = now - (stamp & ~1u);
  return age > (1u << 31) ? 0 : age;
}

}  // namespace

void SetPromiseTracking(PromiseTracking mode) { g_mode = static_cast<int>(mode); }
PromiseTracking PromiseTrackingMode() { return static_cast<PromiseTracking>(g_mode.load()); }

namespace {

// One step towards the switch's mode; returns the mode it acted on.
PromiseTracking FollowOnce(v8::Isolate* isolate) {
  PromiseTracking want = PromiseTrackingMode();
  v8::Global<v8::Function> stop;
  {
    std::lock_guard<std::mutex> lock(TrackersMutex());
    auto it = Trackers().find(isolate);
    if (it == Trackers().end()) {
      if (want == PromiseTracking::kOff) return want;
      it = Trackers().emplace(isolate, Tracker{}).first;
    }
    Tracker& t = it->second;
    // Busy: the installer runs JavaScript, where V8 may run another
    // interrupt that comes here again (the outer call then looks again).
    if (t.busy) return want;
    if (want == PromiseTracking::kOff && t.stop.IsEmpty()) {
      Trackers().erase(it);  // no hooks to remove
      return want;
    }
    if (t.mode == want) return want;
    t.busy = true;
    stop = std::move(t.stop);
  }
  // Not under the lock: JavaScript runs.
  bool removed = stop.IsEmpty() || Remove(isolate, &stop);
  Tracker fresh;
  bool installed = removed && (want == PromiseTracking::kOff || Install(isolate, want, &fresh));
  std::lock_guard<std::mutex> lock(TrackersMutex());
  auto it = Trackers().find(isolate);
  if (it == Trackers().end()) return want;  // forgotten meanwhile (cannot happen: both on this thread)
  Tracker& t = it->second;
  t.busy = false;
  if (!removed) {
    // Still installed, still writing its table: it stays as it was, and
    // is asked again at the next contact (PromiseTrackingPending).
    t.stop = std::move(stop);
    return want;
  }
  // The old hooks are gone: so is what they wrote.
  t.table.reset();
  if (!installed) {
    t.mode = PromiseTracking::kOff;  // asked again at the next contact
    return want;
  }
  if (want == PromiseTracking::kOff) {
    Trackers().erase(it);
    return want;
  }
  t.mode = want;
  t.table = std::move(fresh.table);
  t.stop = std::move(fresh.stop);
  return want;
}

}  // namespace

void FollowPromiseTracking(v8::Isolate* isolate) {
  // The switch may change while the hooks are swapped (JavaScript runs, and
  // with it the interrupt that says so, which finds this thread busy): a
  // few more steps, so that the thread ends where the switch is.
  for (int i = 0; i < 3 && FollowOnce(isolate) != PromiseTrackingMode(); i++) {
  }
}

bool PromiseTrackingPending(v8::Isolate* isolate) {
  PromiseTracking want = PromiseTrackingMode();
  std::lock_guard<std::mutex> lock(TrackersMutex());
  auto it = Trackers().find(isolate);
  // Off, a tracker is left only while its hooks could not be removed yet.
  return (it == Trackers().end() ? PromiseTracking::kOff : it->second.mode) != want;
}

void ForgetPromises(v8::Isolate* isolate) {
  std::lock_guard<std::mutex> lock(TrackersMutex());
  auto it = Trackers().find(isolate);
  if (it == Trackers().end()) return;
  // On the isolate's thread, while it is still alive: the handle can go.
  it->second.stop.Reset();
  Trackers().erase(it);
}

PromiseSummary SummarizePromises(v8::Isolate* isolate, size_t max_groups) {
  PromiseSummary out;
  if (!PromiseTrackingEnabled()) return out;
  std::shared_ptr<v8::BackingStore> table;
  bool sites = false;
  {
    std::lock_guard<std::mutex> lock(TrackersMutex());
    auto it = Trackers().find(isolate);
    if (it == Trackers().end() || !it->second.table) return out;
    table = it->second.table;
    sites = it->second.mode == PromiseTracking::kSites;
  }
  out.tracked = true;
  out.sites = sites;
  // The thread writes on meanwhile: relaxed loads, each slot on its own.
  auto* base = static_cast<char*>(table->Data());
  int32_t untracked = __atomic_load_n(reinterpret_cast<int32_t*>(base), __ATOMIC_RELAXED);
  out.untracked = untracked > 0 ? static_cast<uint64_t>(untracked) : 0;
  auto* stamps = reinterpret_cast<uint32_t*>(base + kHeadBytes);
  auto* site_pcs = reinterpret_cast<uint64_t*>(base + kHeadBytes + kStampsBytes);
  uint32_t now = static_cast<uint32_t>(NowMs());
  struct Site { uint64_t count = 0; uint64_t oldest = 0; };
  std::map<std::pair<uintptr_t, uintptr_t>, Site> by_pcs;
  for (uint32_t i = 0; i < kPromiseSlots; i++) {
    uint32_t stamp = __atomic_load_n(&stamps[i], __ATOMIC_RELAXED);
    if (stamp == 0) continue;
    std::pair<uintptr_t, uintptr_t> pcs{0, 0};
    if (sites) {
      pcs.first = __atomic_load_n(&site_pcs[2 * i], __ATOMIC_RELAXED);
      pcs.second = __atomic_load_n(&site_pcs[2 * i + 1], __ATOMIC_RELAXED);
    }
    Site& s = by_pcs[pcs];
    s.count++;
    s.oldest = std::max(s.oldest, AgeMs(now, stamp));
    out.pending++;
  }
  if (!sites) {
    // One group: no site was recorded.
    if (out.pending > 0) {
      PromiseGroup g;
      g.count = out.pending;
      g.oldest_ms = by_pcs.begin()->second.oldest;
      out.groups.push_back(std::move(g));
    }
    return out;
  }
  std::vector<uintptr_t> pcs;
  for (const auto& [key, site] : by_pcs) pcs.push_back(key.first), pcs.push_back(key.second);
  std::vector<CodeLookup> found(pcs.size());
  out.named = ResolveCodeAddresses(isolate, 0, pcs.data(), pcs.size(), found.data());
  // Sites in the same function merge: the table keeps code addresses.
  std::map<std::tuple<std::string, std::string, int, int>, PromiseGroup> groups;
  size_t k = 0;
  for (const auto& [key, site] : by_pcs) {
    const CodeLookup* l = &found[k];
    uintptr_t pc = pcs[k];
    // Node's dispatcher of several hooks stands between ours and the creator.
    if (pc != 0 && l->kind == CodeKind::kJavaScript && l->file == "node:internal/promise_hooks") l = &found[k + 1], pc = pcs[k + 1];
    // A stub or builtin outside the embedded blob: the frame under it.
    else if (pc != 0 && l->kind != CodeKind::kJavaScript && pcs[k + 1] != 0) l = &found[k + 1], pc = pcs[k + 1];
    k += 2;
    bool js = pc != 0 && l->kind == CodeKind::kJavaScript;
    auto group_key = js ? std::make_tuple(l->function, l->file, l->line, l->column) : std::make_tuple(std::string(), std::string(), 0, 0);
    PromiseGroup& g = groups[group_key];
    g.function = std::get<0>(group_key);
    g.file = std::get<1>(group_key);
    g.line = std::get<2>(group_key);
    g.column = std::get<3>(group_key);
    g.count += site.count;
    g.oldest_ms = std::max(g.oldest_ms, site.oldest);
  }
  for (auto& [key, g] : groups) out.groups.push_back(std::move(g));
  std::sort(out.groups.begin(), out.groups.end(), [](const PromiseGroup& a, const PromiseGroup& b) {
    return a.count != b.count ? a.count > b.count : a.oldest_ms > b.oldest_ms;
  });
  if (out.groups.size() > max_groups) {
    out.more_groups = out.groups.size() - max_groups;
    out.groups.resize(max_groups);
  }
  return out;
}

}  // namespace gmr
