#include "dispatch.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "../convert.h"
#include "reporter_env.h"

namespace gmr {
namespace {

// One report offered to the main thread; whoever claims it first writes it.
struct Job {
  enum Owner { kNobody, kMain, kEnvironment };
  std::unique_ptr<Capture> capture;
  Trigger trigger;
  std::atomic<int> owner{kNobody};
};

// Heap-allocated, never destroyed: may be used while the process exits.
struct Main {
  std::mutex mu;
  std::condition_variable claimed;
  bool attached = false;
  int pickup_ms = 100;
  Napi::ThreadSafeFunction tsfn;
};

Main& M() {
  static Main* main = new Main;
  return *main;
}

void OnFinalized(Napi::Env, void*, void*) {
  std::lock_guard<std::mutex> lock(M().mu);
  M().attached = false;
}

// On the main thread, when its loop gets to the report.
void CallOnMain(Napi::Env env, Napi::Function on_report, std::shared_ptr<Job>* data) {
  std::shared_ptr<Job> job = std::move(*data);
  delete data;
  if (static_cast<napi_env>(env) == nullptr || on_report.IsEmpty()) return;  // being torn down
  int expected = Job::kNobody;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    if (!job->owner.compare_exchange_strong(expected, Job::kMain)) return;  // too late: written elsewhere
    M().claimed.notify_all();
  }
  on_report.Call({CaptureToJs(env, *job->capture, job->trigger)});
}

}  // namespace

void AttachMainReporter(Napi::Env env, Napi::Function on_report, int pickup_ms) {
  Main& m = M();
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.attached) m.tsfn.Release();
  m.tsfn = Napi::ThreadSafeFunction::New(env, on_report, "guru-meditation report", 0, 1,
                                         static_cast<void*>(nullptr), OnFinalized, static_cast<void*>(nullptr));
  m.tsfn.Unref(env);
  m.attached = true;
  m.pickup_ms = pickup_ms;
}

bool DispatchReport(std::unique_ptr<Capture> capture, const Trigger& trigger) {
  auto job = std::make_shared<Job>();
  job->capture = std::move(capture);
  job->trigger = trigger;
  Main& m = M();
  {
    std::unique_lock<std::mutex> lock(m.mu);
    if (m.attached) {
      auto* data = new std::shared_ptr<Job>(job);
      if (m.tsfn.NonBlockingCall(data, CallOnMain) == napi_ok) {
        m.claimed.wait_for(lock, std::chrono::milliseconds(m.pickup_ms),
                           [&] { return job->owner.load() != Job::kNobody; });
      } else {
        delete data;
      }
    }
  }
  int expected = Job::kNobody;
  if (!job->owner.compare_exchange_strong(expected, Job::kEnvironment)) return true;  // the main thread has it
  return LaunchReporterEnv(std::move(job->capture), job->trigger);
}

}  // namespace gmr
