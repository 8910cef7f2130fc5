#include "dispatch.h"

#include <unistd.h>
#include <v8.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "../isolates/registry.h"
#include "../util/proc.h"
#include "../convert.h"
#include "fallback_report.h"
#include "reporter_env.h"

namespace gmr {
namespace {

// A free event loop answers the thread-safe call within a few milliseconds;
// past this, the main thread is interrupted, in case it runs JavaScript. One
// that just answered the capture's interrupt is running JavaScript: it is
// interrupted at once.
constexpr auto kLoopGrace = std::chrono::milliseconds(10);

bool MainRanJavaScript(const Capture& capture) {
  for (const CapturedThread& t : capture.threads)
    if (t.snapshot.tid == getpid()) return t.js_requested && t.js.answered;
  return false;
}

// The main thread asleep in a system call other than its event loop's wait
// (execSync, a blocking read, a lock): neither the loop nor an interrupt
// reaches it until the call returns, which may be never, so the full pickup
// time would be waited for nothing. It gets kLoopGrace, enough for a call
// about to return. Atomics.wait is left out: V8 wakes it for interrupts.
bool MainBlockedInSystemCall(const Capture& capture) {
  const int main = getpid();
  for (const LoopInfo& loop : capture.loops)
    if (loop.tid == main && loop.waiting) return false;
  for (const CapturedThread& t : capture.threads) {
    const ThreadSnapshot& s = t.snapshot;
    if (s.tid != main) continue;
    if (t.js_requested && t.js.answered) return false;
    if (!s.captured || !s.in_syscall || s.v8.vm_state == v8::ATOMICS_WAIT) return false;
    if (s.os_state == 'S' || s.os_state == 'D') return true;
    // The OS state was read just after the capture signal, which woke the
    // thread from that very call: it may still have been on its way back
    // into it (seen in CI, 1 run in a few hundred). Asked again now.
    ProcStat now;
    return ReadThreadStat(main, &now) && (now.state == 'S' || now.state == 'D');
  }
  return false;
}

// One report offered to the main thread; whoever claims it first writes it.
struct Job {
  enum Owner { kNobody, kMain, kEnvironment };
  uint64_t id = 0;  // the event loop's JavaScript names it by this
  std::shared_ptr<const Capture> capture;
  Trigger trigger;
  std::atomic<int> owner{kNobody};
  // Taken by the event loop: it awaits the user sections, and must be done
  // by `deadline`, or the watchdog takes the report back (its loop may have
  // got stuck meanwhile, where no timer of its own fires). Once it
  // commits to writing the file, the report is no longer taken back.
  bool from_loop = false;
  bool committed = false;
  std::chrono::steady_clock::time_point deadline;
};
std::atomic<uint64_t> g_next_job{1};

// Heap-allocated, never destroyed: may be used while the process exits.
struct Main {
  std::mutex mu;
  std::condition_variable claimed;
  bool attached = false;
  int pickup_ms = 100;
  Napi::ThreadSafeFunction tsfn;
  // The interrupt path: used on the main thread only, but for `isolate`.
  napi_env env = nullptr;
  Napi::FunctionReference on_report;
  v8::Isolate* isolate = nullptr;
  // The context the reporter was attached in (the main thread's own): the
  // interrupt may land while the thread runs in a vm context, whose realm
  // the capture's objects must not be made in.
  v8::Global<v8::Context> context;
  std::shared_ptr<Job> offered;       // the report being offered, while it is
  // The report the main thread took, until it is written or handed back
  // (MainReportEnded, or the end of the interrupt): at exit, one still here
  // is written by the fallback (CutShortMainReport).
  std::shared_ptr<Job> writing;
  bool interrupt_outstanding = false;  // at most one interrupt pending
  int write_ms = 4000;  // the event loop's time to finish a report it took
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
    job->from_loop = true;
    job->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(M().write_ms);
    M().writing = job;
    M().claimed.notify_all();
  }
  Napi::Object capture = CaptureToJs(env, *job->capture, job->trigger);
  capture.Set("job", Napi::Number::New(env, static_cast<double>(job->id)));
  on_report.Call({capture, Napi::Boolean::New(env, false)});
}

// The main thread claimed the report but could not write it: a reporter
// environment writes it instead, told why, so that the trigger still gets
// its one report; one that cannot start leaves it to the native fallback.
// Launched from here, the main thread: the watchdog stopped waiting for the
// job once it was claimed.
void HandBack(Job& job, const std::string& why_not) {
  job.trigger.main_failure = why_not;
  std::string why = LaunchReporterEnv(job.capture, job.trigger);
  if (why.empty()) return;  // the environment finishes the job
  WriteFallbackReport(*job.capture, job.trigger, "the main thread could not write the report (" + why_not + ") and " + why);
  ReportDone();
}

// What the pending exception says, without running JavaScript: the thread
// may have no stack left for it.
std::string ExceptionText(Napi::Env env) {
  Napi::Value error = env.GetAndClearPendingException().Value();
  std::string text = "an exception";
  if (error.IsObject()) {
    Napi::Value message = error.As<Napi::Object>().Get("message");
    if (message.IsString()) text = message.As<Napi::String>().Utf8Value();
  }
  if (env.IsExceptionPending()) env.GetAndClearPendingException();
  return text;
}

// The main thread is done with the report it took (`id`; 0: the one it
// holds now): written (why_not empty), or handed back. One taken back
// meanwhile (by the watchdog, or by the fallback at exit) is not its own.
void EndMainReport(uint64_t id, const std::string& why_not) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    if (!M().writing || (id != 0 && M().writing->id != id)) return;
    job = std::move(M().writing);
  }
  if (why_not.empty()) ReportDone();
  else HandBack(*job, why_not);
}
void EndMainReport(const std::string& why_not) { EndMainReport(0, why_not); }

// On the main thread, between two JavaScript operations of whatever it is
// busy with (V8 runs interrupts at stack checks: function entries, loop back
// edges, Atomics.wait). The report is written here synchronously, as oslo's
// Python signal handler does between two bytecodes; nothing may escape into
// the interrupted code. Once claimed, the report is written here or handed
// back: on_report returns true when written, else why not.
void OnMainInterrupt(v8::Isolate* isolate, void*) {
  Main& m = M();
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.interrupt_outstanding = false;
    job = m.offered;
    int expected = Job::kNobody;
    if (!job || !m.attached || !job->owner.compare_exchange_strong(expected, Job::kMain)) return;
    m.writing = job;
    m.claimed.notify_all();
  }
  Napi::Env env(m.env);
  Napi::HandleScope scope(env);
  v8::Context::Scope context_scope(m.context.Get(isolate));
  Napi::Value capture = CaptureToJs(env, *job->capture, job->trigger);
  Napi::Value written;
  if (!env.IsExceptionPending()) written = m.on_report.Call({capture, Napi::Boolean::New(env, true)});
  if (env.IsExceptionPending()) {
    // The script catches its own errors: this is its call failing, such as
    // an interrupt that landed with no stack left for it.
    EndMainReport("its JavaScript could not run there: " + ExceptionText(env));
  } else if (written.IsString()) {
    EndMainReport(written.As<Napi::String>().Utf8Value());
  } else {
    EndMainReport("");
  }
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
  m.env = env;
  m.on_report = Napi::Persistent(on_report);
  m.isolate = v8::Isolate::GetCurrent();
  m.context.Reset(m.isolate, m.isolate->GetCurrentContext());
}

void MainReportEnded(uint64_t job, const std::string& why_not) { EndMainReport(job, why_not); }

void SetMainReportTimeout(int write_ms) {
  std::lock_guard<std::mutex> lock(M().mu);
  M().write_ms = write_ms;
}

bool CommitMainReport(uint64_t id) {
  std::lock_guard<std::mutex> lock(M().mu);
  if (!M().writing || M().writing->id != id) return false;
  M().writing->committed = true;
  return true;
}

int TakeBackStuckMainReport() {
  std::shared_ptr<Job> job;
  int write_ms;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    write_ms = M().write_ms;
    Job* writing = M().writing.get();
    if (!writing || !writing->from_loop || writing->committed) return -1;
    auto now = std::chrono::steady_clock::now();
    if (now < writing->deadline) {
      return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(writing->deadline - now).count()) + 1;
    }
    job = std::move(M().writing);
  }
  HandBack(*job, "the main thread took the report from its event loop and did not finish it within " +
                     std::to_string(write_ms) + " ms (its event loop got stuck while it waited for the sections)");
  return -1;
}

bool CutShortMainReport() {
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(M().mu);
    job = std::move(M().writing);
  }
  if (!job) return false;
  WriteFallbackReport(*job->capture, job->trigger, "report cut short by process exit (the main thread was writing it)");
  ReportDone();
  return true;
}

bool DispatchReport(std::unique_ptr<Capture> capture, const Trigger& trigger) {
  auto job = std::make_shared<Job>();
  job->id = g_next_job.fetch_add(1);
  job->capture = std::move(capture);
  job->trigger = trigger;
  Main& m = M();
  std::string not_picked_up;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    if (m.attached) {
      bool blocked = MainBlockedInSystemCall(*job->capture);
      auto wait = blocked ? kLoopGrace : std::chrono::milliseconds(m.pickup_ms);
      auto deadline = std::chrono::steady_clock::now() + wait;
      not_picked_up =
          blocked ? "the main thread is blocked in a system call outside its event loop (given " +
                        std::to_string(kLoopGrace.count()) + " ms, it did not pick up the report)"
                  : "the main thread did not pick up the report within " + std::to_string(m.pickup_ms) +
                        " ms (it is blocked in a native call, or its JavaScript reached no interrupt check)";
      auto claimed = [&] { return job->owner.load() != Job::kNobody; };
      m.offered = job;
      auto* data = new std::shared_ptr<Job>(job);
      if (m.tsfn.NonBlockingCall(data, CallOnMain) != napi_ok) delete data;
      auto grace = MainRanJavaScript(*job->capture) ? std::chrono::milliseconds(0) : kLoopGrace;
      if (!m.claimed.wait_for(lock, grace, claimed) && !m.interrupt_outstanding) {
        // Not under m.mu: the interrupt may run at once, and it takes m.mu.
        m.interrupt_outstanding = true;
        lock.unlock();
        bool posted = InterruptIfAlive(m.isolate, OnMainInterrupt, nullptr);
        lock.lock();
        if (!posted) m.interrupt_outstanding = false;
      }
      m.claimed.wait_until(lock, deadline, claimed);
      m.offered.reset();
    }
  }
  int expected = Job::kNobody;
  if (!job->owner.compare_exchange_strong(expected, Job::kEnvironment)) return true;  // the main thread has it
  job->trigger.main_not_picked_up = not_picked_up;  // the main thread no longer reads the job
  std::string why = LaunchReporterEnv(job->capture, job->trigger);
  if (why.empty()) return true;
  // Written now, natively: the call queued to the main thread may never
  // run (its thread stuck), and finds the job taken if it does.
  WriteFallbackReport(*job->capture, job->trigger, why);
  return false;  // done: the next trigger may go
}

}  // namespace gmr
