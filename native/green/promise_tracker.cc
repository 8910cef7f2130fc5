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

// 2 MB per tracking isolate; three quarters of it may hold pending promises.
constexpr uint32_t kCapacity = 1 << 16;
constexpr uint32_t kMaxLive = kCapacity / 4 * 3;

struct Slot {
  enum : uint32_t { kEmpty = 0, kLive, kGone };
  uint32_t state;
  uint32_t hash;
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

// Open addressing by identity hash (equal hashes of different promises just
// take two slots; a settle removes one of them). Written by the isolate's
// thread, copied by the watchdog, both under `mu`.
struct Table {
  std::mutex mu;
  std::unique_ptr<Slot[]> slots{new Slot[kCapacity]()};
  std::unique_ptr<Slot[]> spare{new Slot[kCapacity]()};
  uint32_t live = 0;
  uint32_t gone = 0;
  uint64_t untracked = 0;  // pending promises that found the table full

  // Tombstones slow probing down: past a quarter of the table, live slots
  // are moved to the spare table, which becomes the table.
  void Compact() {
    std::memset(spare.get(), 0, sizeof(Slot) * kCapacity);
    for (uint32_t i = 0; i < kCapacity; i++) {
      const Slot& s = slots[i];
      if (s.state != Slot::kLive) continue;
      uint32_t j = s.hash & (kCapacity - 1);
      while (spare[j].state != Slot::kEmpty) j = (j + 1) & (kCapacity - 1);
      spare[j] = s;
    }
    std::swap(slots, spare);
    gone = 0;
  }

  void Insert(uint32_t hash, uintptr_t site) {
    std::lock_guard<std::mutex> lock(mu);
    if (live >= kMaxLive) {
      untracked++;
      return;
    }
    if (live + gone >= kMaxLive) Compact();
    uint32_t i = hash & (kCapacity - 1);
    while (slots[i].state == Slot::kLive) i = (i + 1) & (kCapacity - 1);
    if (slots[i].state == Slot::kGone) gone--;
    slots[i] = {Slot::kLive, hash, site, NowMs()};
    live++;
  }

  void Remove(uint32_t hash) {
    std::lock_guard<std::mutex> lock(mu);
    for (uint32_t i = hash & (kCapacity - 1), n = 0; n < kCapacity; i = (i + 1) & (kCapacity - 1), n++) {
      Slot& s = slots[i];
      if (s.state == Slot::kEmpty) break;
      if (s.state == Slot::kLive && s.hash == hash) {
        s.state = Slot::kGone;
        live--;
        gone++;
        return;
      }
    }
    // Not found: created before tracking began, or one of those counted
    // only (a settled one of them leaves the count).
    if (untracked > 0) untracked--;
  }
};

std::atomic<bool> g_enabled{false};

// Tables by isolate; heap-allocated, never destroyed (see js_stacks.cc).
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

void OnPromise(v8::PromiseHookType type, v8::Local<v8::Promise> promise, v8::Local<v8::Value>) {
  Table* table = t_table;
  if (!table) return;
  if (type == v8::PromiseHookType::kInit) {
    v8::Isolate* isolate = promise->GetIsolate();
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
    table->Insert(static_cast<uint32_t>(promise->GetIdentityHash()), site);
  } else if (type == v8::PromiseHookType::kResolve) {
    table->Remove(static_cast<uint32_t>(promise->GetIdentityHash()));
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
      if (s.state != Slot::kLive) continue;
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
