#include "js_stacks.h"

#include <v8.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

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
  InterruptAnswered(isolate);
  // Its heap figures as of this report, before it answers (the watchdog
  // reads them once the answers are in). A worker met just now gets its
  // GC callbacks here; the rest of its switches follow below.
  if (registered && !OnReporterThread()) FollowHeapFigures(isolate);
  RecordHeapFigures(isolate);
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
