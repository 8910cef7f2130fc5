#include "timer_tracker.h"

#include <node.h>
#include <uv.h>
#include <v8.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

namespace gmr {
namespace {

// Enough for a server's socket timeouts; past it timers are counted only.
constexpr size_t kCapacity = 10000;

struct Entry {
  TimerInfo info;
  uint64_t start_ms = 0;  // on libuv's loop clock
};

struct Table {
  std::unordered_multimap<uint32_t, Entry> timers;  // by the Timeout's identity hash
  uint64_t untracked = 0;
  // Node counts timer time from its environment's start (its timer base):
  // libuv's loop time minus a _idleStart, taken at the first arming.
  bool has_base = false;
  int64_t base_ms = 0;
};

std::mutex& TablesMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<v8::Isolate*, Table>& Tables() {
  static auto* tables = new std::map<v8::Isolate*, Table>;
  return *tables;
}

std::string Utf8(v8::Isolate* isolate, v8::Local<v8::Value> value) {
  v8::String::Utf8Value s(isolate, value);
  return *s ? std::string(*s, s.length()) : std::string();
}


}  // namespace

void TimerCreated(v8::Isolate* isolate, v8::Local<v8::Object> timeout, v8::Local<v8::Function> fn) {
  Entry e;
  e.info.function = Utf8(isolate, fn->GetDebugName());
  e.info.file = Utf8(isolate, fn->GetScriptOrigin().ResourceName());
  e.info.line = fn->GetScriptLineNumber() + 1;
  e.info.column = fn->GetScriptColumnNumber() + 1;
  uint32_t hash = static_cast<uint32_t>(timeout->GetIdentityHash());
  std::lock_guard<std::mutex> lock(TablesMutex());
  Table& t = Tables()[isolate];
  if (t.timers.size() >= kCapacity) {
    t.untracked++;
    return;
  }
  t.timers.emplace(hash, std::move(e));
}

void TimerArmed(v8::Isolate* isolate, v8::Local<v8::Object> timeout, double start_ms, double after_ms, bool repeat) {
  uint32_t hash = static_cast<uint32_t>(timeout->GetIdentityHash());
  std::lock_guard<std::mutex> lock(TablesMutex());
  Table& t = Tables()[isolate];
  auto it = t.timers.find(hash);
  if (it == t.timers.end()) return;
  if (!t.has_base) {
    // On the loop's thread, during the turn whose time Node read.
    uv_loop_t* loop = node::GetCurrentEventLoop(isolate);
    if (!loop) return;
    t.base_ms = static_cast<int64_t>(uv_now(loop)) - static_cast<int64_t>(start_ms);
    t.has_base = true;
  }
  it->second.start_ms = static_cast<uint64_t>(static_cast<int64_t>(start_ms) + t.base_ms);
  it->second.info.after_ms = after_ms > 0 ? static_cast<uint64_t>(after_ms) : 0;
  it->second.info.repeat = repeat;
  it->second.info.armed = true;
}

void TimerDone(v8::Isolate* isolate, v8::Local<v8::Object> timeout) {
  uint32_t hash = static_cast<uint32_t>(timeout->GetIdentityHash());
  std::lock_guard<std::mutex> lock(TablesMutex());
  Table& t = Tables()[isolate];
  auto it = t.timers.find(hash);
  if (it != t.timers.end()) t.timers.erase(it);
  else if (t.untracked > 0) t.untracked--;
}

TimerSummary SummarizeTimers(v8::Isolate* isolate, size_t max) {
  TimerSummary out;
  std::lock_guard<std::mutex> lock(TablesMutex());
  auto it = Tables().find(isolate);
  if (it == Tables().end()) return out;
  out.tracked = true;
  out.untracked = it->second.untracked;
  // libuv's loop time is ms of the monotonic clock, as is this.
  int64_t now = static_cast<int64_t>(uv_hrtime() / 1000000);
  for (const auto& [hash, e] : it->second.timers) {
    TimerInfo t = e.info;
    t.due_in_ms = static_cast<int64_t>(e.start_ms + e.info.after_ms) - now;
    out.timers.push_back(std::move(t));
  }
  std::sort(out.timers.begin(), out.timers.end(), [](const TimerInfo& a, const TimerInfo& b) { return a.due_in_ms < b.due_in_ms; });
  if (out.timers.size() > max) {
    out.more = out.timers.size() - max;
    out.timers.resize(max);
  }
  return out;
}

void ForgetTimers(v8::Isolate* isolate) {
  std::lock_guard<std::mutex> lock(TablesMutex());
  Tables().erase(isolate);
}

}  // namespace gmr
