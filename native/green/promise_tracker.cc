#include "promise_tracker.h"

#include <time.h>
#include <v8.h>
#include <v8-profiler.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "../codemap/code_map.h"

namespace gmr {
namespace {

// 1.5 MB per tracking isolate.
constexpr uint32_t kCapacity = 1 << 16;
// A promise carries its slot in its internal field (Node builds V8 with one,
// and leaves it unused) as a Smi: the slot's index and its generation, so
// a settle never frees a slot another promise has taken since.
constexpr uint32_t kIndexBits = 16;
constexpr uint32_t kGenerationMask = (1u << 14) - 1;  // Smi-safe: 30 bits in all

struct Slot {
  uint32_t generation;  // bumped at each use; 0: never used
  bool live;
  uintptr_t site;       // code address of the creating JS frame; 0: none
  uint64_t created_ms;  // CLOCK_MONOTONIC_COARSE
};

uint64_t NowMs() {
  // The coarse clock is a vDSO read of a few nanoseconds: this runs for
  // every promise.
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Written by the isolate's thread, read by the watchdog, both under `mu`.
struct Table {
  std::mutex mu;
  std::unique_ptr<Slot[]> slots{new Slot[kCapacity]()};
  std::unique_ptr<uint32_t[]> free_list{new uint32_t[kCapacity]};
  uint32_t free_count = kCapacity;
  uint32_t live = 0;
  uint64_t untracked = 0;  // pending promises that found the table full

  Table() {
    for (uint32_t i = 0; i < kCapacity; i++) free_list[i] = kCapacity - 1 - i;
  }

  // The tag for the promise's field; 0 when the table is full.
  uint32_t Insert(uintptr_t site) {
    std::lock_guard<std::mutex> lock(mu);
    if (free_count == 0) {
      untracked++;
      return 0;
    }
    uint32_t i = free_list[--free_count];
    Slot& s = slots[i];
    s.generation = (s.generation % kGenerationMask) + 1;
    s.live = true;
    s.site = site;
    s.created_ms = NowMs();
    live++;
    return (s.generation << kIndexBits) | i;
  }

  void Remove(uint32_t tag) {
    std::lock_guard<std::mutex> lock(mu);
    Slot& s = slots[tag & (kCapacity - 1)];
    if (!s.live || s.generation != tag >> kIndexBits) return;
    s.live = false;
    free_list[free_count++] = tag & (kCapacity - 1);
    live--;
  }

  // A promise of those counted only settled.
  void RemoveUntracked() {
    std::lock_guard<std::mutex> lock(mu);
    if (untracked > 0) untracked--;
  }
};

std::atomic<bool> g_enabled{false};

// Tables by isolate; heap-allocated, never destroyed (see isolates/registry.cc).
std::mutex& TablesMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<v8::Isolate*, Table*>& Tables() {
  static auto* tables = new std::map<v8::Isolate*, Table*>;
  return *tables;
}

// The calling thread's table: the hook runs on its isolate's thread.
thread_local Table* t_table = nullptr;

// The field's value: our tag (a positive Smi), or Smi 0 as V8 leaves it.
uint32_t TagOf(v8::Local<v8::Promise> promise) {
  v8::Local<v8::Data> field = promise->GetInternalField(0);
  if (!field->IsValue()) return 0;
  v8::Local<v8::Value> value = field.As<v8::Value>();
  return value->IsUint32() ? value.As<v8::Uint32>()->Value() : 0;
}

void OnPromise(v8::PromiseHookType type, v8::Local<v8::Promise> promise, v8::Local<v8::Value>) {
  Table* table = t_table;
  if (!table || promise->InternalFieldCount() < 1) return;
  v8::Isolate* isolate = promise->GetIsolate();
  if (type == v8::PromiseHookType::kInit) {
    // One frame, no allocation: the code address of the JavaScript frame
    // that created the promise (the interpreter's is its bytecode's).
    void* frames[1] = {nullptr};
    v8::SampleInfo info{};
    // The sampler walks from the registers it is given: this very frame,
    // whose callers lead through V8's C entry into the JavaScript frames.
    v8::RegisterState state;
    state.pc = __builtin_return_address(0);
    state.fp = __builtin_frame_address(0);
    state.sp = __builtin_frame_address(0);
    isolate->GetStackSample(state, frames, 1, &info);
    uintptr_t site = info.frames_count > 0 ? reinterpret_cast<uintptr_t>(frames[0]) : 0;
    if (uint32_t tag = table->Insert(site)) promise->SetInternalField(0, v8::Integer::NewFromUnsigned(isolate, tag));
  } else if (type == v8::PromiseHookType::kResolve) {
    if (uint32_t tag = TagOf(promise)) {
      table->Remove(tag);
      promise->SetInternalField(0, v8::Integer::New(isolate, 0));
    } else {
      table->RemoveUntracked();
    }
  }
}

}  // namespace

void SetPromiseTrackingEnabled(bool enabled) { g_enabled = enabled; }
bool PromiseTrackingEnabled() { return g_enabled; }

void FollowPromiseTracking(v8::Isolate* isolate) {
  if (!g_enabled) return StopPromiseTracking(isolate);
  std::lock_guard<std::mutex> lock(TablesMutex());
  if (Tables().count(isolate)) return;
  auto* table = new Table;
  Tables()[isolate] = table;
  t_table = table;
  isolate->SetPromiseHook(OnPromise);
}

void StopPromiseTracking(v8::Isolate* isolate) {
  std::lock_guard<std::mutex> lock(TablesMutex());
  auto it = Tables().find(isolate);
  if (it == Tables().end()) return;
  isolate->SetPromiseHook(nullptr);
  if (t_table == it->second) t_table = nullptr;
  delete it->second;
  Tables().erase(it);
}

PromiseSummary SummarizePromises(v8::Isolate* isolate, size_t max_groups) {
  PromiseSummary out;
  struct Site { uint64_t count = 0; uint64_t oldest = UINT64_MAX; };
  std::map<uintptr_t, Site> sites;
  {
    std::lock_guard<std::mutex> lock(TablesMutex());
    auto it = Tables().find(isolate);
    if (it == Tables().end()) return out;
    Table* table = it->second;
    out.tracked = true;
    // Grouped under the table's lock: one pass, no copy of the table.
    std::lock_guard<std::mutex> table_lock(table->mu);
    out.untracked = table->untracked;
    for (uint32_t i = 0; i < kCapacity; i++) {
      const Slot& s = table->slots[i];
      if (!s.live) continue;
      Site& site = sites[s.site];
      site.count++;
      site.oldest = std::min(site.oldest, s.created_ms);
      out.pending++;
    }
  }
  std::vector<uintptr_t> pcs;
  for (const auto& [pc, site] : sites) pcs.push_back(pc);
  std::vector<CodeLookup> found(pcs.size());
  out.named = ResolveCodeAddresses(isolate, 0, pcs.data(), pcs.size(), found.data());
  // Sites in the same function merge: the table keeps bytecode offsets.
  std::map<std::tuple<std::string, std::string, int, int>, PromiseGroup> groups;
  uint64_t now = NowMs();
  for (size_t i = 0; i < pcs.size(); i++) {
    const Site& site = sites[pcs[i]];
    const CodeLookup& l = found[i];
    bool js = pcs[i] != 0 && l.kind == CodeKind::kJavaScript;
    auto key = js ? std::make_tuple(l.function, l.file, l.line, l.column) : std::make_tuple(std::string(), std::string(), 0, 0);
    PromiseGroup& g = groups[key];
    g.function = std::get<0>(key);
    g.file = std::get<1>(key);
    g.line = std::get<2>(key);
    g.column = std::get<3>(key);
    g.count += site.count;
    g.oldest_ms = std::max(g.oldest_ms, now - std::min(now, site.oldest));
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
