#include "main_channel.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

namespace gmr {
namespace {

struct Request {
  bool picked_up = false;
  bool answered = false;
  std::string json;
};

// Heap-allocated, never destroyed: may be used while the process exits.
struct Channel {
  std::mutex mu;
  std::condition_variable changed;
  bool attached = false;
  Napi::ThreadSafeFunction tsfn;
  uint64_t next_id = 1;
  std::map<uint64_t, Request> requests;  // the ones someone still waits for
};

Channel& C() {
  static Channel* channel = new Channel;
  return *channel;
}

void OnFinalized(Napi::Env, void*, void*) {
  std::lock_guard<std::mutex> lock(C().mu);
  C().attached = false;
}

// On the main thread, when its loop gets to the request.
void CallOnMain(Napi::Env env, Napi::Function on_request, uint64_t* id_ptr) {
  uint64_t id = *id_ptr;
  delete id_ptr;
  if (static_cast<napi_env>(env) == nullptr || on_request.IsEmpty()) return;  // being torn down
  {
    std::lock_guard<std::mutex> lock(C().mu);
    auto it = C().requests.find(id);
    if (it == C().requests.end()) return;  // given up on: not worth running the sections
    it->second.picked_up = true;
    C().changed.notify_all();
  }
  on_request.Call({Napi::Number::New(env, static_cast<double>(id))});
}

}  // namespace

void AttachMainChannel(Napi::Env env, Napi::Function on_request) {
  Channel& c = C();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.attached) c.tsfn.Release();
  c.tsfn = Napi::ThreadSafeFunction::New(env, on_request, "guru-meditation main channel", 0, 1,
                                         static_cast<void*>(nullptr), OnFinalized, static_cast<void*>(nullptr));
  c.tsfn.Unref(env);
  c.attached = true;
}

void AnswerMainRequest(uint64_t id, std::string json) {
  Channel& c = C();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.requests.find(id);
  if (it == c.requests.end()) return;  // too late: the report went without it
  it->second.answered = true;
  it->second.json = std::move(json);
  c.changed.notify_all();
}

MainAnswer AskMain(int pickup_ms, int answer_ms, std::string* json) {
  Channel& c = C();
  std::unique_lock<std::mutex> lock(c.mu);
  if (!c.attached) return MainAnswer::kNoChannel;
  uint64_t id = c.next_id++;
  c.requests[id];
  auto* id_ptr = new uint64_t(id);
  if (c.tsfn.NonBlockingCall(id_ptr, CallOnMain) != napi_ok) {
    delete id_ptr;
    c.requests.erase(id);
    return MainAnswer::kNoChannel;
  }
  auto picked_up = [&] { return c.requests[id].picked_up; };
  auto answered = [&] { return c.requests[id].answered; };
  MainAnswer result = MainAnswer::kAnswered;
  if (!c.changed.wait_for(lock, std::chrono::milliseconds(pickup_ms), picked_up)) {
    result = MainAnswer::kNotPickedUp;
  } else if (!c.changed.wait_for(lock, std::chrono::milliseconds(answer_ms), answered)) {
    result = MainAnswer::kTimedOut;
  } else {
    *json = std::move(c.requests[id].json);
  }
  c.requests.erase(id);
  return result;
}

}  // namespace gmr
