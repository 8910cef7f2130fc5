#include "code_map.h"

#include <v8-profiler.h>
#include <v8.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>


namespace gmr {
namespace {

constexpr size_t kMaxMaps = 1024;                 // isolates with a map at once
constexpr size_t kMaxPendingRecords = 1 << 16;    // then they are indexed on the isolate's thread
constexpr size_t kMaxIndexEntries = 1 << 17;      // then the oldest JS entries go
constexpr size_t kRecordsPerChunk = 4096;
constexpr size_t kArenaChunkBytes = 64 * 1024;
constexpr int kMaxName = 255;
constexpr int kMaxScriptName = 1023;
constexpr size_t kMaxScripts = 1 << 16;           // then new scripts go unnamed
constexpr int kLockTimeoutMs = 50;                // a reader's wait for a map

constexpr uint8_t kRelocation = 0xff;             // Record::kind of a move

std::atomic<bool> g_enabled{true};

// One code event, as appended on the isolate's thread. 40 bytes.
struct Record {
  uintptr_t start;
  uintptr_t aux;       // a move: the previous start; else the name, in the arena
  uint32_t size;
  uint32_t script;     // 1-based id; 0: none
  int32_t line;
  int32_t column;
  uint8_t name_len;
  uint8_t kind;        // CodeKind, or kRelocation
};

// What the index keeps per code object, keyed by its start.
struct IndexEntry {
  const char* name;
  uint64_t seq;        // the event that created it: older entries go first
  uint32_t size;
  uint32_t script;
  int32_t line;
  int32_t column;
  uint8_t name_len;
  uint8_t kind;
};

// Names, back to back, in chunks that never move.
class Arena {
 public:
  const char* Copy(const char* s, size_t n) {
    if (n == 0) return nullptr;
    if (n > left_) {
      chunks_.emplace_back(new char[kArenaChunkBytes]);
      cur_ = chunks_.back().get();
      left_ = kArenaChunkBytes;
    }
    char* out = cur_;
    memcpy(out, s, n);
    cur_ += n;
    left_ -= n;
    used_ += n;
    return out;
  }
  size_t used() const { return used_; }
  size_t reserved() const { return chunks_.size() * kArenaChunkBytes; }

 private:
  std::vector<std::unique_ptr<char[]>> chunks_;
  char* cur_ = nullptr;
  size_t left_ = 0;
  size_t used_ = 0;
};

bool StartsWith(const char* s, const char* prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

class CodeMap;

// Read by the capture signal's handler: plain atomics, never freed.
struct MapSlot {
  std::atomic<v8::Isolate*> isolate{nullptr};
  std::atomic<uint64_t> events{0};
  CodeMap* map = nullptr;  // under MapsMutex()
};
MapSlot g_map_slots[kMaxMaps];

// Never destroyed: the watchdog may read while static destructors run.
std::mutex& MapsMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}

class CodeMap : public v8::CodeEventHandler {
 public:
  CodeMap(v8::Isolate* isolate, MapSlot* slot) : v8::CodeEventHandler(isolate), isolate_(isolate), slot_(slot) {}

  ~CodeMap() override;

  void Handle(v8::CodeEvent* event) override;

  void Stop() { stopped_.store(true, std::memory_order_relaxed); }

  // On the isolate's thread, outside any code event: reads the names of the
  // scripts met since the last time (see InternScript).
  void NameScripts();

  // Watchdog side, under mu_.
  bool Resolve(uint64_t events, const uintptr_t* pcs, size_t count, CodeLookup* out);
  void AddStats(CodeMapStats* stats);

 private:
  uint32_t InternScript(v8::Local<v8::String> name);
  void Append(Record r, const char* name, size_t name_len);
  void ReplayLocked(uint64_t upto);
  void Apply(const Record& r, uint64_t seq);
  void Insert(uintptr_t start, const IndexEntry& e);
  void EraseRange(uintptr_t start, uint32_t size);
  void Erase(std::map<uintptr_t, IndexEntry>::iterator it);
  void DropOldest();
  void MaybeCompactNames();
  const IndexEntry* Find(uintptr_t pc, uintptr_t* start) const;

  v8::Isolate* const isolate_;
  MapSlot* const slot_;
  std::atomic<bool> stopped_{false};

  // The isolate's thread only (creation events come on it): every script
  // name met, by string hash, and those whose text is still to be read.
  struct KnownScript {
    v8::Global<v8::String> name;
    uint32_t id;
  };
  v8::Global<v8::String> last_script_;
  uint32_t last_script_id_ = 0;
  std::unordered_map<uint32_t, std::vector<KnownScript>> known_scripts_;
  size_t script_count_ = 0;
  std::vector<std::pair<uint32_t, v8::Global<v8::String>>> unnamed_scripts_;
  bool naming_requested_ = false;

  std::timed_mutex mu_;  // timed: a stopped thread holding it must not stall a report
  // Under mu_: pending records, oldest first, in chunks.
  std::deque<std::unique_ptr<Record[]>> chunks_;
  size_t head_ = 0;        // first pending record in chunks_.front()
  size_t tail_ = 0;        // records used in chunks_.back()
  uint64_t total_ = 0;     // events recorded
  uint64_t applied_ = 0;   // events indexed
  Arena names_;
  std::vector<std::string> scripts_;  // by id - 1; "" until NameScripts read it
  std::map<uintptr_t, IndexEntry> index_;
  size_t live_name_bytes_ = 0;
  size_t dropped_ = 0;
};

uint8_t KindOf(v8::CodeEventType type, const char* comment) {
  switch (type) {
    case v8::kFunctionType:
    case v8::kInterpretedFunctionType:
    case v8::kLazyCompileType:
    case v8::kEvalType:
    case v8::kScriptType:
      return static_cast<uint8_t>(CodeKind::kJavaScript);
    case v8::kBytecodeHandlerType:
      return static_cast<uint8_t>(CodeKind::kInterpreter);
    case v8::kBuiltinType:
      // The trampolines an interpreted frame's native frame returns into.
      if (comment && StartsWith(comment, "InterpreterE")) return static_cast<uint8_t>(CodeKind::kInterpreter);
      return static_cast<uint8_t>(CodeKind::kOther);
    default:
      return static_cast<uint8_t>(CodeKind::kOther);
  }
}

int WriteName(v8::Isolate* isolate, v8::Local<v8::String> s, char* buf, int capacity) {
  if (s.IsEmpty() || s->Length() == 0) return 0;
  return s->WriteUtf8(isolate, buf, capacity, nullptr,
                      v8::String::NO_NULL_TERMINATION | v8::String::REPLACE_INVALID_UTF8);
}

void CodeMap::Handle(v8::CodeEvent* event) {
  if (stopped_.load(std::memory_order_relaxed)) return;
  v8::CodeEventType type = event->GetCodeType();
  Record r{};
  r.start = event->GetCodeStartAddress();
  r.size = static_cast<uint32_t>(std::min<size_t>(event->GetCodeSize(), UINT32_MAX));
  char name[kMaxName];
  int name_len = 0;
  if (type == v8::kRelocationType) {
    // May come from GC threads: only plain fields are read.
    r.kind = kRelocation;
    r.aux = event->GetPreviousCodeStartAddress();
    Append(r, nullptr, 0);
    return;
  }
  const char* comment = event->GetComment();
  r.kind = KindOf(type, comment);
  // V8 calls creation events on the isolate's thread, holding its logger's
  // lock: nothing here may allocate on the JS heap (a GC could dispatch an
  // event under that lock again). A JS function's name is its
  // SharedFunctionInfo's, an internalized (flat) string, which is copied
  // without allocating; script names may not be flat: see InternScript.
  if (r.kind == static_cast<uint8_t>(CodeKind::kJavaScript) && v8::Isolate::TryGetCurrent() == isolate_) {
    v8::HandleScope scope(isolate_);
    name_len = WriteName(isolate_, event->GetFunctionName(), name, kMaxName);
    r.script = InternScript(event->GetScriptName());
    r.line = event->GetScriptLine();
    r.column = event->GetScriptColumn();
  }
  if (name_len == 0 && comment && *comment) {
    // Builtins and handlers are named by their comment.
    name_len = static_cast<int>(std::min<size_t>(strlen(comment), kMaxName));
    memcpy(name, comment, name_len);
  }
  Append(r, name, static_cast<size_t>(name_len));
}

CodeMap::~CodeMap() {
  last_script_.Reset();
  for (auto& [hash, scripts] : known_scripts_)
    for (KnownScript& k : scripts) k.name.Reset();
  for (auto& [id, name] : unnamed_scripts_) name.Reset();
}

void NameScriptsInterrupt(v8::Isolate* isolate, void*);

// Same script name, same id. Without allocating (see Handle): a name is
// matched by its hash and V8's comparison, which read strings as they are;
// its text is read later by NameScripts, at the isolate's next interrupt
// check, where flattening a string is allowed.
uint32_t CodeMap::InternScript(v8::Local<v8::String> name) {
  if (name.IsEmpty() || name->Length() == 0) return 0;
  // Consecutive events mostly come from one script: the same string.
  if (!last_script_.IsEmpty() && last_script_ == name) return last_script_id_;
  uint32_t hash = static_cast<uint32_t>(name->GetIdentityHash());
  std::vector<KnownScript>& same_hash = known_scripts_[hash];
  uint32_t id = 0;
  for (KnownScript& k : same_hash) {
    if (k.name == name || k.name.Get(isolate_)->StringEquals(name)) {
      id = k.id;
      break;
    }
  }
  if (id == 0) {
    if (script_count_ >= kMaxScripts) return 0;
    {
      std::lock_guard<std::timed_mutex> lock(mu_);
      scripts_.emplace_back();
      id = static_cast<uint32_t>(scripts_.size());
    }
    script_count_++;
    same_hash.push_back(KnownScript{v8::Global<v8::String>(isolate_, name), id});
    unnamed_scripts_.emplace_back(id, v8::Global<v8::String>(isolate_, name));
    if (!naming_requested_) {
      naming_requested_ = true;
      isolate_->RequestInterrupt(NameScriptsInterrupt, nullptr);
    }
  }
  last_script_.Reset(isolate_, name);
  last_script_id_ = id;
  return id;
}

void CodeMap::NameScripts() {
  naming_requested_ = false;
  if (unnamed_scripts_.empty()) return;
  v8::HandleScope scope(isolate_);
  std::vector<std::pair<uint32_t, std::string>> named;
  for (auto& [id, global] : unnamed_scripts_) {
    char buf[kMaxScriptName];
    int n = WriteName(isolate_, global.Get(isolate_), buf, kMaxScriptName);
    named.emplace_back(id, std::string(buf, static_cast<size_t>(n)));
    global.Reset();
  }
  unnamed_scripts_.clear();
  std::lock_guard<std::timed_mutex> lock(mu_);
  for (auto& [id, text] : named) scripts_[id - 1] = std::move(text);
}

void CodeMap::Append(Record r, const char* name, size_t name_len) {
  std::lock_guard<std::timed_mutex> lock(mu_);
  if (name_len > 0) {
    r.aux = reinterpret_cast<uintptr_t>(names_.Copy(name, name_len));
    r.name_len = static_cast<uint8_t>(name_len);
  }
  if (chunks_.empty() || tail_ == kRecordsPerChunk) {
    chunks_.emplace_back(new Record[kRecordsPerChunk]);
    tail_ = 0;
  }
  chunks_.back()[tail_++] = r;
  total_++;
  slot_->events.store(total_, std::memory_order_release);
  if (total_ - applied_ >= kMaxPendingRecords) ReplayLocked(total_);
}

void CodeMap::ReplayLocked(uint64_t upto) {
  while (applied_ < upto && !chunks_.empty()) {
    Apply(chunks_.front()[head_], applied_);
    applied_++;
    head_++;
    bool last_chunk = chunks_.size() == 1;
    if (head_ == kRecordsPerChunk || (last_chunk && head_ == tail_)) {
      chunks_.pop_front();
      head_ = 0;
      if (last_chunk) tail_ = 0;
    }
  }
  if (applied_ == total_) MaybeCompactNames();
}

void CodeMap::Apply(const Record& r, uint64_t seq) {
  if (r.kind == kRelocation) {
    auto it = index_.find(r.aux);
    if (it == index_.end()) {
      EraseRange(r.start, r.size);  // something we do not know lives there now
      return;
    }
    IndexEntry e = it->second;
    Erase(it);
    e.size = r.size;
    Insert(r.start, e);
    return;
  }
  IndexEntry e;
  e.name = reinterpret_cast<const char*>(r.aux);
  e.seq = seq;
  e.size = r.size;
  e.script = r.script;
  e.line = r.line;
  e.column = r.column;
  e.name_len = r.name_len;
  e.kind = r.kind;
  Insert(r.start, e);
}

void CodeMap::Insert(uintptr_t start, const IndexEntry& e) {
  if (e.size == 0) return;
  EraseRange(start, e.size);  // what was there is gone: no deletion events exist
  index_.emplace(start, e);
  live_name_bytes_ += e.name_len;
  if (index_.size() > kMaxIndexEntries) DropOldest();
}

void CodeMap::Erase(std::map<uintptr_t, IndexEntry>::iterator it) {
  live_name_bytes_ -= it->second.name_len;
  index_.erase(it);
}

void CodeMap::EraseRange(uintptr_t start, uint32_t size) {
  uintptr_t end = start + size;
  auto it = index_.lower_bound(start);
  if (it != index_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second.size > start) Erase(prev);
  }
  while (it != index_.end() && it->first < end) {
    auto next = std::next(it);
    Erase(it);
    it = next;
  }
}

// Interpreter entries (bytecode handlers, trampolines: a fixed set) stay:
// they tell interpreted frames apart in native stacks.
bool Droppable(const IndexEntry& e) { return e.kind != static_cast<uint8_t>(CodeKind::kInterpreter); }

void CodeMap::DropOldest() {
  std::vector<uint64_t> seqs;
  seqs.reserve(index_.size());
  for (const auto& [start, e] : index_)
    if (Droppable(e)) seqs.push_back(e.seq);
  if (seqs.empty()) return;
  size_t quarter = std::max<size_t>(seqs.size() / 4, 1);
  std::nth_element(seqs.begin(), seqs.begin() + (quarter - 1), seqs.end());
  uint64_t threshold = seqs[quarter - 1];
  for (auto it = index_.begin(); it != index_.end();) {
    auto next = std::next(it);
    if (Droppable(it->second) && it->second.seq <= threshold) {
      Erase(it);
      dropped_++;
    }
    it = next;
  }
}

// Names of superseded entries stay in the arena until it is mostly garbage;
// then the live ones are copied into a fresh one. Only with nothing pending,
// since pending records point into the arena too.
void CodeMap::MaybeCompactNames() {
  if (names_.used() < (1u << 20) || names_.used() < 3 * live_name_bytes_) return;
  Arena fresh;
  for (auto& [start, e] : index_) e.name = fresh.Copy(e.name, e.name_len);
  names_ = std::move(fresh);
}

const IndexEntry* CodeMap::Find(uintptr_t pc, uintptr_t* start) const {
  auto it = index_.upper_bound(pc);
  if (it == index_.begin()) return nullptr;
  --it;
  if (pc >= it->first + it->second.size) return nullptr;
  *start = it->first;
  return &it->second;
}

bool CodeMap::Resolve(uint64_t events, const uintptr_t* pcs, size_t count, CodeLookup* out) {
  std::unique_lock<std::timed_mutex> lock(mu_, std::defer_lock);
  if (!lock.try_lock_for(std::chrono::milliseconds(kLockTimeoutMs))) return false;
  ReplayLocked(events == 0 ? total_ : std::min(events, total_));
  for (size_t i = 0; i < count; i++) {
    uintptr_t pc = pcs[i];
    uintptr_t start = 0;
    // A return address may sit just past its code; an interpreted frame on
    // its function-entry stack check points one byte before its bytecode.
    const IndexEntry* e = Find(pc, &start);
    if (!e && pc > 0) e = Find(pc - 1, &start);
    if (!e) e = Find(pc + 1, &start);
    CodeLookup& o = out[i];
    o = CodeLookup();
    if (!e) continue;
    o.kind = static_cast<CodeKind>(e->kind);
    o.start = start;
    o.function.assign(e->name ? e->name : "", e->name_len);
    if (e->script > 0 && e->script <= scripts_.size()) o.file = scripts_[e->script - 1];
    o.line = e->line;
    o.column = e->column;
  }
  return true;
}

void CodeMap::AddStats(CodeMapStats* stats) {
  std::lock_guard<std::timed_mutex> lock(mu_);
  stats->maps++;
  stats->events += total_;
  stats->pending += total_ - applied_;
  stats->indexed += index_.size();
  stats->dropped += dropped_;
  stats->scripts += scripts_.size();
  size_t script_bytes = 0;
  // Each also has an entry of the intern table (a hash, a global handle).
  for (const std::string& s : scripts_) script_bytes += s.capacity() + sizeof(std::string) + 64;
  // A std::map node: the entry, the key and about 32 bytes of tree links.
  stats->bytes += chunks_.size() * kRecordsPerChunk * sizeof(Record) + names_.reserved() +
                  index_.size() * (sizeof(IndexEntry) + sizeof(uintptr_t) + 32) + script_bytes;
}

void IgnoreJitCodeEvent(const v8::JitCodeEvent*) {}

// The GC reports moved code and moved BytecodeArrays to code event
// listeners only while the isolate's "log object relocation" bit is set.
// V8 11.3 sets it for a JIT code event handler, a CPU or heap profiler or
// file logging, not for a CodeEventHandler: a compacting GC would move code
// behind the map's back, and a sampled pc could then fall on what was
// recorded for a dead function at the new address. A JIT code event handler
// set for good costs about as much as the map itself (V8 formats a name and
// line tables for it at every compilation), so one that ignores its events
// is set only during full GCs, the only ones that move code and bytecode
// (both live in old spaces; scavenges move young objects only). Setting and
// clearing it makes V8 compute the bit again. The side effect: a JIT code
// event handler someone else set on this isolate is cleared by the first
// full GC (there is one per isolate).
void OnFullGcStart(v8::Isolate* isolate, v8::GCType, v8::GCCallbackFlags, void*) {
  isolate->SetJitCodeEventHandler(v8::kJitCodeEventDefault, IgnoreJitCodeEvent);
}

void OnFullGcEnd(v8::Isolate* isolate, v8::GCType, v8::GCCallbackFlags, void*) {
  isolate->SetJitCodeEventHandler(v8::kJitCodeEventDefault, nullptr);
}

void LogCodeMoves(v8::Isolate* isolate, bool on) {
  if (on) {
    isolate->AddGCPrologueCallback(OnFullGcStart, nullptr, v8::kGCTypeMarkSweepCompact);
    isolate->AddGCEpilogueCallback(OnFullGcEnd, nullptr, v8::kGCTypeMarkSweepCompact);
  } else {
    isolate->RemoveGCPrologueCallback(OnFullGcStart, nullptr);
    isolate->RemoveGCEpilogueCallback(OnFullGcEnd, nullptr);
  }
}

CodeMap* FindMap(v8::Isolate* isolate) {
  std::lock_guard<std::mutex> lock(MapsMutex());
  for (MapSlot& s : g_map_slots)
    if (s.map && s.isolate.load(std::memory_order_relaxed) == isolate) return s.map;
  return nullptr;
}

// On the isolate's thread; its map, if it still has one, cannot go away
// meanwhile (maps are freed on their isolate's thread).
void NameScriptsInterrupt(v8::Isolate* isolate, void*) {
  if (CodeMap* map = FindMap(isolate)) map->NameScripts();
}

}  // namespace

void SetCodeMapEnabled(bool enabled) {
  g_enabled.store(enabled);
  if (enabled) return;
  // Until each isolate stops from its own thread, its map ignores events.
  std::lock_guard<std::mutex> lock(MapsMutex());
  for (MapSlot& s : g_map_slots)
    if (s.map) s.map->Stop();
}

bool CodeMapEnabled() { return g_enabled.load(); }

void StartCodeMap(v8::Isolate* isolate) {
  if (!g_enabled.load()) return;
  CodeMap* map = nullptr;
  {
    std::lock_guard<std::mutex> lock(MapsMutex());
    MapSlot* free_slot = nullptr;
    for (MapSlot& s : g_map_slots) {
      if (s.map && s.isolate.load(std::memory_order_relaxed) == isolate) return;  // already listening
      if (!s.map && !free_slot) free_slot = &s;
    }
    if (!free_slot) return;
    map = new CodeMap(isolate, free_slot);
    free_slot->map = map;
    free_slot->events.store(0, std::memory_order_relaxed);
    free_slot->isolate.store(isolate, std::memory_order_release);
  }
  // Replays the existing code into Handle() before it returns.
  map->Enable();
  LogCodeMoves(isolate, true);
}

void StopCodeMap(v8::Isolate* isolate) {
  CodeMap* map = nullptr;
  {
    std::lock_guard<std::mutex> lock(MapsMutex());
    for (MapSlot& s : g_map_slots) {
      if (!s.map || s.isolate.load(std::memory_order_relaxed) != isolate) continue;
      map = s.map;
      s.map = nullptr;
      s.isolate.store(nullptr, std::memory_order_release);
      s.events.store(0, std::memory_order_relaxed);
      break;
    }
  }
  // No reader can hold it now: readers find maps under MapsMutex and keep it
  // while they read.
  if (!map) return;
  map->Disable();
  delete map;
  LogCodeMoves(isolate, false);
}

// Async-signal-safe (called from the capture signal's handler): acquire
// loads over the fixed table g_map_slots, nothing else.
uint64_t CodeMapEventCount(v8::Isolate* isolate) {
  for (MapSlot& s : g_map_slots)
    if (s.isolate.load(std::memory_order_acquire) == isolate) return s.events.load(std::memory_order_acquire);
  return 0;
}

bool ResolveCodeAddresses(v8::Isolate* isolate, uint64_t events, const uintptr_t* pcs, size_t count,
                          CodeLookup* out) {
  for (size_t i = 0; i < count; i++) out[i] = CodeLookup();
  if (!g_enabled.load() || !isolate) return false;
  std::lock_guard<std::mutex> lock(MapsMutex());
  for (MapSlot& s : g_map_slots) {
    if (!s.map || s.isolate.load(std::memory_order_relaxed) != isolate) continue;
    return s.map->Resolve(events, pcs, count, out);
  }
  return false;
}

CodeMapStats GetCodeMapStats() {
  CodeMapStats stats;
  std::lock_guard<std::mutex> lock(MapsMutex());
  for (MapSlot& s : g_map_slots)
    if (s.map) s.map->AddStats(&stats);
  return stats;
}

}  // namespace gmr
