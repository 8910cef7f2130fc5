// JavaScript stacks with function, file, line and column, asked of each JS
// thread with Isolate::RequestInterrupt and waited for on a bounded deadline.
// Known isolates are interrupted through the registry (isolates/registry.h),
// which makes sure they are alive; an unknown one only while its thread is
// held in the capture signal's handler (see thread_snapshot.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace v8 {
class Isolate;
}

namespace gmr {

struct JsFrame {
  std::string function;
  std::string file;
  int line = 0;
  int column = 0;
};

struct JsStack {
  bool answered = false;
  uint64_t answered_after_us = 0;
  std::vector<JsFrame> frames;
  // The async functions awaiting below `frames`, innermost first
  // (AsyncCallers); async_read false when they could not be read safely.
  bool async_read = false;
  std::vector<JsFrame> async_callers;
};

// One report's interrupts. Post() may be called from the first-contact hook
// (thread held) with known=false, or afterwards with known=true; Wait()
// collects the answers until the deadline. Requests that are not answered in
// time are abandoned: their callback frees them when it runs.
class JsStackRound {
 public:
  JsStackRound();
  ~JsStackRound();
  void Post(v8::Isolate* isolate, bool known);
  bool Posted(v8::Isolate* isolate) const;
  // Waits for the answers of `wanted` only: an isolate posted at first
  // contact just to make it known is not waited for.
  void Wait(int timeout_ms, const std::vector<v8::Isolate*>& wanted);
  // nullptr when no request was posted for this isolate.
  const JsStack* Result(v8::Isolate* isolate) const;

  // Shared with the interrupt callback (js_stacks.cc).
  struct Request;

 private:
  std::map<v8::Isolate*, Request*> requests_;
  std::map<v8::Isolate*, JsStack> results_;
};

// Stack of the calling thread, captured directly (for the API caller).
JsStack CurrentJsStack(v8::Isolate* isolate);

// On the isolate's thread (an interrupt): the async functions awaiting below
// the running JavaScript, innermost first. False when they cannot be read
// safely (js_stacks.cc says how).
bool AsyncCallers(v8::Isolate* isolate, std::vector<JsFrame>* out);

}  // namespace gmr
