#include "heap_figures.h"

#include <node.h>
#include <v8.h>

#include <chrono>
#include <ctime>
#include <map>
#include <mutex>

#include "../isolates/registry.h"

namespace gmr {
namespace {

// The collections themselves: not incremental marking steps nor the
// processing of weak callbacks, which V8 reports through the same callbacks.
// (kGCTypeMinorMarkCompact is V8 11's name of V8 12's kGCTypeMinorMarkSweep.)
constexpr int kCollections = 1 | 2 | 4;  // scavenge | minor mark-compact | mark-sweep-compact

struct Entry {
  v8::Isolate* isolate = nullptr;
  bool installed = false;
  bool asked = false;        // an ask is outstanding (under TableMutex)
  uint64_t gc_start_ns = 0;  // the prologue's time; its thread only
  HeapFigures figures;       // under TableMutex
};

// Heap-allocated and never destroyed (see isolates/registry.cc).
std::mutex& TableMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<v8::Isolate*, Entry*>& Table() {
  static auto* table = new std::map<v8::Isolate*, Entry*>;
  return *table;
}

uint64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// V8's figures, read on the isolate's thread, outside the table's lock:
// while the lock is held nothing is done but a copy, so no thread ever
// holds it while it waits for anything else.
void Read(v8::Isolate* isolate, HeapFigures* f) {
  v8::HeapStatistics heap;
  isolate->GetHeapStatistics(&heap);
  f->used = heap.used_heap_size();
  f->total = heap.total_heap_size();
  f->limit = heap.heap_size_limit();
  f->external = heap.external_memory();
  size_t n = isolate->NumberOfHeapSpaces();
  f->space_count = 0;
  for (size_t i = 0; i < n && f->space_count < kMaxHeapSpaces; i++) {
    v8::HeapSpaceStatistics space;
    if (!isolate->GetHeapSpaceStatistics(&space, i)) continue;
    f->spaces[f->space_count++] = {space.space_name(), space.space_used_size(), space.space_size()};
  }
  f->at_mono_ns = MonotonicNs();
  f->at_unix_ms = UnixMs();
}

// Publishes what was read; the GC counters stay the table's.
void Publish(v8::Isolate* isolate, const HeapFigures& read, HeapFiguresSource source) {
  std::lock_guard<std::mutex> lock(TableMutex());
  auto it = Table().find(isolate);
  if (it == Table().end()) return;  // not followed, or forgotten
  HeapFigures& f = it->second->figures;
  uint64_t count = f.gc_count, total = f.gc_total_ns, pause = f.last_gc_pause_ns, at = f.last_gc_unix_ms;
  int type = f.last_gc_type;
  f = read;
  f.source = source;
  f.gc_count = count;
  f.gc_total_ns = total;
  f.last_gc_type = type;
  f.last_gc_pause_ns = pause;
  f.last_gc_unix_ms = at;
}

void OnGcPrologue(v8::Isolate*, v8::GCType, v8::GCCallbackFlags, void* data) {
  static_cast<Entry*>(data)->gc_start_ns = MonotonicNs();
}

void OnGcEpilogue(v8::Isolate* isolate, v8::GCType type, v8::GCCallbackFlags, void* data) {
  auto* entry = static_cast<Entry*>(data);
  uint64_t end = MonotonicNs();
  uint64_t pause = entry->gc_start_ns && end > entry->gc_start_ns ? end - entry->gc_start_ns : 0;
  entry->gc_start_ns = 0;
  HeapFigures read;
  Read(isolate, &read);
  {
    std::lock_guard<std::mutex> lock(TableMutex());
    HeapFigures& f = entry->figures;
    f.gc_count++;
    f.gc_total_ns += pause;
    f.last_gc_type = static_cast<int>(type);
    f.last_gc_pause_ns = pause;
    f.last_gc_unix_ms = read.at_unix_ms;
  }
  Publish(isolate, read, HeapFiguresSource::kGc);
}

void OnAsked(v8::Isolate* isolate, void*) { RecordHeapFigures(isolate); }

}  // namespace

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void FollowHeapFigures(v8::Isolate* isolate) {
  Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(TableMutex());
    auto it = Table().find(isolate);
    if (it != Table().end() && it->second->installed) return;
    entry = it != Table().end() ? it->second : (Table()[isolate] = new Entry);
    entry->isolate = isolate;
    entry->installed = true;
  }
  // Only collections: the filter keeps V8 from calling us for the rest.
  auto filter = static_cast<v8::GCType>(kCollections);
  isolate->AddGCPrologueCallback(OnGcPrologue, entry, filter);
  isolate->AddGCEpilogueCallback(OnGcEpilogue, entry, filter);
  HeapFigures read;
  Read(isolate, &read);
  Publish(isolate, read, HeapFiguresSource::kInterrupt);
}

void ForgetHeapFigures(v8::Isolate* isolate) {
  Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(TableMutex());
    auto it = Table().find(isolate);
    if (it == Table().end()) return;
    entry = it->second;
    Table().erase(it);
  }
  // On its thread: no callback of this isolate runs meanwhile.
  if (entry->installed) {
    isolate->RemoveGCPrologueCallback(OnGcPrologue, entry);
    isolate->RemoveGCEpilogueCallback(OnGcEpilogue, entry);
  }
  delete entry;
}

void RecordHeapFigures(v8::Isolate* isolate) {
  {
    std::lock_guard<std::mutex> lock(TableMutex());
    auto it = Table().find(isolate);
    if (it == Table().end()) return;
    it->second->asked = false;
  }
  HeapFigures read;
  Read(isolate, &read);
  Publish(isolate, read, HeapFiguresSource::kInterrupt);
}

void AskHeapFigures(const std::vector<v8::Isolate*>& idle) {
  for (v8::Isolate* isolate : idle) {
    {
      std::lock_guard<std::mutex> lock(TableMutex());
      auto it = Table().find(isolate);
      if (it == Table().end() || it->second->asked) continue;
      it->second->asked = true;
    }
    // Not under TableMutex: this takes the registry's lock, which the
    // isolate's cleanup also takes before it forgets the figures.
    if (!InterruptIfAlive(isolate, OnAsked, nullptr)) {
      std::lock_guard<std::mutex> lock(TableMutex());
      auto it = Table().find(isolate);
      if (it != Table().end()) it->second->asked = false;
    }
  }
}

bool TryHeapFiguresOf(v8::Isolate* isolate, HeapFigures* out) {
  std::unique_lock<std::mutex> lock(TableMutex(), std::try_to_lock);
  if (!lock.owns_lock()) return false;
  auto it = Table().find(isolate);
  *out = it == Table().end() ? HeapFigures{} : it->second->figures;
  return true;
}

HeapFigures HeapFiguresOf(v8::Isolate* isolate) {
  std::lock_guard<std::mutex> lock(TableMutex());
  auto it = Table().find(isolate);
  return it == Table().end() ? HeapFigures{} : it->second->figures;
}

}  // namespace gmr
