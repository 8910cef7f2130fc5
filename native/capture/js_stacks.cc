#include "js_stacks.h"

#include <v8.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "../isolates/own_context.h"
#include "../isolates/registry.h"
#include "../memory/heap_figures.h"

namespace gmr {
namespace {

constexpr int kMaxFrames = 64;

// Heap-allocated and never destroyed (see isolates/registry.cc).
std::mutex& AnswerMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::condition_variable& Answered() {
  static auto* cv = new std::condition_variable;
  return *cv;
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

// Error.prepareStackTrace while AsyncCallers reads: the async call sites
// as [function, file, line, column] arrays. CallSite's methods are V8's.
void AsyncSitesOnly(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Array> out = v8::Array::New(isolate);
  if (info.Length() < 2 || !info[1]->IsArray()) return info.GetReturnValue().Set(out);
  v8::Local<v8::Array> sites = info[1].As<v8::Array>();
  auto call = [&](v8::Local<v8::Object> site, const char* method, v8::Local<v8::Value>* result) {
    v8::Local<v8::Value> fn;
    return site->Get(context, v8::String::NewFromUtf8(isolate, method).ToLocalChecked()).ToLocal(&fn) &&
           fn->IsFunction() && fn.As<v8::Function>()->Call(context, site, 0, nullptr).ToLocal(result);
  };
  uint32_t n = 0;
  for (uint32_t i = 0; i < sites->Length(); i++) {
    v8::Local<v8::Value> v, is_async, name, file, line, column;
    if (!sites->Get(context, i).ToLocal(&v) || !v->IsObject()) continue;
    v8::Local<v8::Object> site = v.As<v8::Object>();
    if (!call(site, "isAsync", &is_async) || !is_async->IsTrue()) continue;
    if (!call(site, "getFunctionName", &name) || !call(site, "getFileName", &file) ||
        !call(site, "getLineNumber", &line) || !call(site, "getColumnNumber", &column))
      continue;
    v8::Local<v8::Value> frame[] = {name, file, line, column};
    out->Set(context, n++, v8::Array::New(isolate, frame, 4)).Check();
  }
  info.GetReturnValue().Set(out);
}

// One own property of Error, as it was: absent, or a plain data property.
struct SavedProperty {
  bool present = false;
  v8::Local<v8::Value> value;
  v8::PropertyAttribute attributes = v8::None;
};

// False when the property is there but not plain writable, configurable
// data (an accessor is the application's code: it is never run).
bool SaveProperty(v8::Local<v8::Context> context, v8::Local<v8::Object> error, v8::Local<v8::String> key,
                  SavedProperty* out) {
  v8::Isolate* isolate = context->GetIsolate();
  if (!error->HasOwnProperty(context, key).FromMaybe(true)) return true;
  v8::Local<v8::Value> d;
  if (!error->GetOwnPropertyDescriptor(context, key).ToLocal(&d) || !d->IsObject()) return false;
  v8::Local<v8::Object> desc = d.As<v8::Object>();
  auto own = [&](const char* name) {
    return desc->HasOwnProperty(context, v8::String::NewFromUtf8(isolate, name).ToLocalChecked()).FromMaybe(true);
  };
  if (own("get") || own("set") || !own("value")) return false;
  v8::Maybe<v8::PropertyAttribute> attributes = error->GetPropertyAttributes(context, key);
  if (attributes.IsNothing() || (attributes.FromJust() & (v8::ReadOnly | v8::DontDelete))) return false;
  out->present = true;
  out->attributes = attributes.FromJust();
  return error->GetRealNamedProperty(context, key).ToLocal(&out->value);
}

void RestoreProperty(v8::Local<v8::Context> context, v8::Local<v8::Object> error, v8::Local<v8::String> key,
                     const SavedProperty& saved) {
  // Nothing more to do if it fails: the property was plain data before.
  if (saved.present) error->DefineOwnProperty(context, key, saved.value, saved.attributes).FromMaybe(false);
  else error->Delete(context, key).FromMaybe(false);
}

}  // namespace

// V8 gives the async callers (Node's `at async route (app.js:12)` frames)
// to an Error's stack and not to StackTrace::CurrentStackTrace
// (nodejs/node#50056): they are read from Error.captureStackTrace in the
// thread's own context, with a prepareStackTrace of ours that keeps the
// async call sites, the application's prepareStackTrace and stackTraceLimit
// put back after. Everything is read and written through V8's API, not
// through globals the application could have replaced; an Error that is a
// Proxy, an accessor or a frozen property: nothing is read.
bool AsyncCallers(v8::Isolate* isolate, std::vector<JsFrame>* out) {
  return InOwnContext(isolate, false, [&](v8::Local<v8::Context> context, v8::TryCatch&) {
    v8::Local<v8::Object> global = context->Global();
    auto key = [&](const char* name) { return v8::String::NewFromUtf8(isolate, name).ToLocalChecked(); };
    v8::Local<v8::Value> e, capture;
    if (!global->HasRealNamedProperty(context, key("Error")).FromMaybe(false) ||
        !global->GetRealNamedProperty(context, key("Error")).ToLocal(&e) || !e->IsFunction() || e->IsProxy())
      return false;
    v8::Local<v8::Object> error = e.As<v8::Object>();
    if (!error->HasRealNamedProperty(context, key("captureStackTrace")).FromMaybe(false) ||
        !error->GetRealNamedProperty(context, key("captureStackTrace")).ToLocal(&capture) || !capture->IsFunction() ||
        capture.As<v8::Function>()->ScriptId() != v8::UnboundScript::kNoScriptId)
      return false;  // not V8's own
    SavedProperty prepare, limit;
    v8::Local<v8::String> prepare_key = key("prepareStackTrace"), limit_key = key("stackTraceLimit");
    if (!SaveProperty(context, error, prepare_key, &prepare) || !SaveProperty(context, error, limit_key, &limit))
      return false;
    v8::Local<v8::Function> ours;
    v8::Local<v8::Object> holder = v8::Object::New(isolate);
    v8::Local<v8::Value> stack;
    bool read = v8::Function::New(context, AsyncSitesOnly).ToLocal(&ours) &&
                error->DefineOwnProperty(context, limit_key, v8::Integer::New(isolate, 200)).FromMaybe(false) &&
                error->DefineOwnProperty(context, prepare_key, ours, v8::DontEnum).FromMaybe(false);
    v8::Local<v8::Value> argv[] = {holder};
    read = read && !capture.As<v8::Function>()->Call(context, error, 1, argv).IsEmpty() &&
           holder->Get(context, key("stack")).ToLocal(&stack) && stack->IsArray();
    RestoreProperty(context, error, prepare_key, prepare);
    RestoreProperty(context, error, limit_key, limit);
    if (!read) return false;
    v8::Local<v8::Array> frames = stack.As<v8::Array>();
    for (uint32_t i = 0; i < frames->Length(); i++) {
      v8::Local<v8::Value> f, name, file, line, column;
      if (!frames->Get(context, i).ToLocal(&f) || !f->IsArray()) continue;
      v8::Local<v8::Array> a = f.As<v8::Array>();
      if (!a->Get(context, 0).ToLocal(&name) || !a->Get(context, 1).ToLocal(&file) ||
          !a->Get(context, 2).ToLocal(&line) || !a->Get(context, 3).ToLocal(&column))
        continue;
      JsFrame frame;
      v8::String::Utf8Value fn(isolate, name), path(isolate, file);
      frame.function = name->IsString() && *fn ? *fn : "";
      frame.file = file->IsString() && *path ? *path : "";
      frame.line = line->IsNumber() ? line.As<v8::Number>()->Value() : 0;
      frame.column = column->IsNumber() ? column.As<v8::Number>()->Value() : 0;
      out->push_back(std::move(frame));
    }
    return true;
  });
}

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
  InterruptAnswered(isolate);
  // Its heap figures as of this report, before it answers (the watchdog
  // reads them once the answers are in). A worker met just now gets its
  // GC callbacks here; the rest of its switches follow below.
  if (registered && !OnReporterThread()) FollowHeapFigures(isolate);
  RecordHeapFigures(isolate);
  int expected = JsStackRound::Request::kPending;
  if (request->state.load() == expected) {
    request->stack = CurrentJsStack(isolate);
    request->stack.async_read = AsyncCallers(isolate, &request->stack.async_callers);
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
  if (registered) FollowSwitchesHere(isolate);
}

}  // namespace

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
    if (!InterruptOnce(isolate, OnInterrupt, request)) {
      delete request;  // gone, or still busy with an earlier report's request
      return;
    }
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
