#include "timer_tracker.h"

#include "promise_tracker.h"
#include "../isolates/own_context.h"

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
  bool on = false;         // reporting (the accessors stay once installed)
  bool installed = false;
  std::unordered_map<double, Entry> timers;  // by the id the accessors give each Timeout
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


void TimerCreated(v8::Isolate* isolate, double id, v8::Local<v8::Function> fn) {
  Entry e;
  e.info.function = Utf8(isolate, fn->GetDebugName());
  e.info.file = Utf8(isolate, fn->GetScriptOrigin().ResourceName());
  e.info.line = fn->GetScriptLineNumber() + 1;
  e.info.column = fn->GetScriptColumnNumber() + 1;
  std::lock_guard<std::mutex> lock(TablesMutex());
  auto found = Tables().find(isolate);
  if (found == Tables().end() || !found->second.on) return;  // off, or the isolate is going
  Table& t = found->second;
  if (t.timers.size() >= kCapacity) {
    t.untracked++;
    return;
  }
  t.timers[id] = std::move(e);
}

void TimerArmed(v8::Isolate* isolate, double id, double start_ms, double after_ms, bool repeat) {
  std::lock_guard<std::mutex> lock(TablesMutex());
  auto found = Tables().find(isolate);
  if (found == Tables().end() || !found->second.on) return;
  Table& t = found->second;
  auto it = t.timers.find(id);
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

void TimerDone(v8::Isolate* isolate, double id) {
  std::lock_guard<std::mutex> lock(TablesMutex());
  auto found = Tables().find(isolate);
  if (found == Tables().end()) return;
  Table& t = found->second;
  auto it = t.timers.find(id);
  if (it != t.timers.end()) t.timers.erase(it);
  else if (t.untracked > 0) t.untracked--;
}

// The accessors' calls into the table.
void OnCreated(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (info[0]->IsNumber() && info[1]->IsFunction())
    TimerCreated(info.GetIsolate(), info[0].As<v8::Number>()->Value(), info[1].As<v8::Function>());
}

void OnArmed(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (info[0]->IsNumber() && info[1]->IsNumber() && info[2]->IsNumber())
    TimerArmed(info.GetIsolate(), info[0].As<v8::Number>()->Value(), info[1].As<v8::Number>()->Value(),
               info[2].As<v8::Number>()->Value(), info[3]->BooleanValue(info.GetIsolate()));
}

void OnDone(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (info[0]->IsNumber()) TimerDone(info.GetIsolate(), info[0].As<v8::Number>()->Value());
}

// Takes the Timeout prototype from a timer made and cleared at once.
// Once per realm: a second install (another copy of the library) would hide
// the values the first one keeps.
const char kInstall[] = R"js((function (created, armed, done) {
  if (typeof setTimeout !== 'function') return false
  const probe = setTimeout(() => {}, 0)
  const proto = Object.getPrototypeOf(probe)
  clearTimeout(probe)
  const mark = Symbol.for('guru-meditation timers')
  if (proto[mark]) return true
  Object.defineProperty(proto, mark, { value: true })
  const ID = Symbol('guru-meditation timer')
  let next = 0
  const id = t => t[ID] ?? (t[ID] = ++next)
  const CALLBACK = Symbol('guru-meditation onTimeout')
  const START = Symbol('guru-meditation idleStart')
  const DESTROYED = Symbol('guru-meditation destroyed')
  Object.defineProperty(proto, '_onTimeout', { configurable: true,
    get () { return this[CALLBACK] },
    set (v) { this[CALLBACK] = v; if (typeof v === 'function') created(id(this), v) } })
  Object.defineProperty(proto, '_idleStart', { configurable: true,
    get () { return this[START] },
    set (v) { this[START] = v; if (typeof v === 'number') armed(id(this), v, this._idleTimeout, this._repeat !== null) } })
  Object.defineProperty(proto, '_destroyed', { configurable: true,
    get () { return this[DESTROYED] },
    set (v) { this[DESTROYED] = v; if (v === true) done(id(this)) } })
  return true
}))js";

// Runs the installer in the main context of the thread's environment, not
// in a vm context it may be busy in (whose setTimeout, if any, is the
// application's); false when it could not (no timers there yet: a worker
// still bootstrapping, or no environment's context is current).
bool Install(v8::Isolate* isolate) {
  return InOwnContext(isolate, false, [&](v8::Local<v8::Context> context, v8::TryCatch&) {
    v8::Local<v8::Value> fn, result;
    v8::Local<v8::Function> created, armed, done;
    if (!RunScript(isolate, context, kInstall).ToLocal(&fn) || !fn->IsFunction() ||
        !v8::Function::New(context, OnCreated).ToLocal(&created) || !v8::Function::New(context, OnArmed).ToLocal(&armed) ||
        !v8::Function::New(context, OnDone).ToLocal(&done))
      return false;
    v8::Local<v8::Value> argv[] = {created, armed, done};
    // A worker still bootstrapping throws from its timer code (its debuglog
    // is not set up yet): asked again at the next meeting round.
    return fn.As<v8::Function>()->Call(context, v8::Undefined(isolate), 3, argv).ToLocal(&result) && result->IsTrue();
  });
}

}  // namespace

void FollowTimerTracking(v8::Isolate* isolate) {
  bool on = PromiseTrackingEnabled();
  {
    std::lock_guard<std::mutex> lock(TablesMutex());
    auto it = Tables().find(isolate);
    if (it == Tables().end()) {
      if (!on) return;
      it = Tables().emplace(isolate, Table{}).first;
    }
    it->second.on = on;
    if (!on) it->second.timers.clear();
    if (!on || it->second.installed) return;
    // Marked first: the installer runs JavaScript, where V8 may run another
    // interrupt that comes here again.
    it->second.installed = true;
  }
  // Not under the lock: the accessors call into the table.
  if (Install(isolate)) return;
  std::lock_guard<std::mutex> lock(TablesMutex());
  auto it = Tables().find(isolate);
  if (it != Tables().end()) it->second.installed = false;  // asked again at the next contact
}

bool TimerTrackingPending(v8::Isolate* isolate) {
  if (!PromiseTrackingEnabled()) return false;
  std::lock_guard<std::mutex> lock(TablesMutex());
  auto it = Tables().find(isolate);
  return it == Tables().end() || !it->second.installed;
}

TimerSummary SummarizeTimers(v8::Isolate* isolate, size_t max) {
  TimerSummary out;
  std::lock_guard<std::mutex> lock(TablesMutex());
  auto it = Tables().find(isolate);
  // Off: the accessors stay installed, but report nothing.
  if (it == Tables().end() || !it->second.on) return out;
  out.tracked = true;
  out.untracked = it->second.untracked;
  // libuv's loop time is ms of the monotonic clock, as is this.
  int64_t now = static_cast<int64_t>(uv_hrtime() / 1000000);
  for (const auto& [id, e] : it->second.timers) {
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
