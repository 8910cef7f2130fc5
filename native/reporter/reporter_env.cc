#include "reporter_env.h"

#include <malloc.h>
#include <node.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <v8.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include "../util/test_hooks.h"
#include "../util/threads.h"
#include "dispatch.h"
#include "fallback_report.h"

namespace gmr {
namespace {

// V8 sets the isolate's stack limit about 1 MB below where it starts; the
// thread needs room beyond that for the C++ under it.
constexpr size_t kThreadStackBytes = 4 << 20;
constexpr auto kExitBound = std::chrono::milliseconds(kReporterExitBoundMs);
// How long a new report waits for the previous environment to go.
constexpr auto kPreviousTimeout = std::chrono::seconds(5);

// Where the launched job is. A job is written by the script (kFinished) or,
// exactly once, by the fallback (fallback_claimed).
enum class Phase { kNone, kWaiting, kTaken, kFinished };

// Heap-allocated, never destroyed: used while the process exits.
struct State {
  std::mutex mu;
  std::condition_variable finished;  // a reporter thread ended
  node::MultiIsolatePlatform* platform = nullptr;
  // Exit hooks ran: no environment starts (the platform is about to go)
  // until the main thread reopens, if the process lives on.
  bool closing = false;
  std::function<void()> schedule_reopen;
  std::string script;
  bool builtin_snapshot = false;
  std::string data;
  // A reporter thread exists, from its launch until it no longer touches
  // V8 or the platform: what exit waits for.
  bool running = false;
  // Its environment, from before its script can run until its loop ended:
  // what exit stops. Set only while `closing` is false, under `mu`, so an
  // environment is either stopped by exit or never runs.
  node::Environment* env = nullptr;
  std::shared_ptr<const Capture> job;
  Trigger job_trigger;
  Phase phase = Phase::kNone;
  bool fallback_claimed = false;
  std::string start_error;  // why the environment could not be created
  std::atomic<bool> out_of_memory{false};
};

State& S() {
  static State* state = new State;
  return *state;
}

// Under s.mu: the job, when it is not written and nobody is writing it
// natively yet; the caller writes it (outside the lock).
bool ClaimFallback(State& s, std::shared_ptr<const Capture>* job, Trigger* trigger) {
  if (s.fallback_claimed || !s.job || (s.phase != Phase::kWaiting && s.phase != Phase::kTaken)) return false;
  s.fallback_claimed = true;
  *job = s.job;
  *trigger = s.job_trigger;
  return true;
}

// The script an environment runs: it loads the reporter with a full require.
std::string EntrySource(const std::string& script) {
  std::string quoted;
  for (char c : script) {
    if (c == '\\' || c == '\'') quoted += '\\';
    quoted += c;
  }
  return "const req = require('module').createRequire('" + quoted + "'); req('" + quoted + "');";
}

// Runs in the new environment before Node loads the application's preloads
// (-r, NODE_OPTIONS), after its bootstrap: an APM agent or the application's
// own set-up has no business in the reporter, so the loader is told to skip
// them. The bootstrap took the environment for the main thread (embedders'
// environments are) and gave it the main thread's signal listeners
// (--report-on-signal, --heapsnapshot-signal, --trace-sigint): those are the
// application's and run on its main thread; here they would run a second
// time. They go, and worker_threads says this is not the main thread.
void SkipApplicationPreloads(node::Environment*, v8::Local<v8::Value>, v8::Local<v8::Value> require) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::TryCatch try_catch(isolate);
  const char* source =
      "(function (require) {"
      "  require('internal/modules/cjs/loader').Module._preloadModules = function () {};"
      "  for (const name of Object.keys(require('os').constants.signals)) process.removeAllListeners(name);"
      "  require('worker_threads').isMainThread = false;"
      "})";
  v8::Local<v8::String> code = v8::String::NewFromUtf8(isolate, source).ToLocalChecked();
  v8::Local<v8::Script> script;
  v8::Local<v8::Value> fn;
  if (!v8::Script::Compile(context, code).ToLocal(&script) || !script->Run(context).ToLocal(&fn) || !fn->IsFunction())
    return;
  v8::Local<v8::Value> argv[] = {require};
  if (fn.As<v8::Function>()->Call(context, v8::Undefined(isolate), 1, argv).IsEmpty()) return;  // preloads then run
}

// Node's own snapshot data: it does not own the blob (part of the binary),
// and is made once, never freed (used while the process exits).
const node::EmbedderSnapshotData* BuiltinSnapshot() {
  static const node::EmbedderSnapshotData* snapshot = node::EmbedderSnapshotData::BuiltinSnapshotData().release();
  return snapshot;
}

// The reporter's heap is full: its report ends (the fallback writes it)
// rather than the process. Room to unwind is given.
size_t OnNearHeapLimit(void* data, size_t current_limit, size_t) {
  S().out_of_memory = true;
  static_cast<v8::Isolate*>(data)->TerminateExecution();
  return current_limit * 2;
}

void RunEnvironment(State& s, node::MultiIsolatePlatform* platform, const std::string& script, bool from_snapshot) {
  std::vector<std::string> errors;
  std::vector<std::string> args = {"node"};
  std::vector<std::string> exec_args;
  // Not the owner of process state, no inspector, no signal handlers: a
  // guest of the process that leaves no trace.
  auto flags = static_cast<node::EnvironmentFlags::Flags>(
      node::EnvironmentFlags::kNoCreateInspector | node::EnvironmentFlags::kNoStartDebugSignalHandler |
      node::EnvironmentFlags::kNoRegisterESMLoader | node::EnvironmentFlags::kNoGlobalSearchPaths);
  // From Node's built-in startup snapshot, as its workers are: deserialized
  // rather than bootstrapped, it starts in a fifth of the CPU time (measured:
  // 7 ms against 38 ms idle; 40 ms against 420-750 ms beside 8 busy workers).
  auto setup = from_snapshot ? node::CommonEnvironmentSetup::CreateFromSnapshot(
                                   platform, &errors, BuiltinSnapshot(), args, exec_args, flags,
                                   node::AllocateEnvironmentThreadId())
                             : node::CommonEnvironmentSetup::Create(platform, &errors, args, exec_args, flags,
                                                                    node::AllocateEnvironmentThreadId());
  if (!setup) {
    std::string why;
    for (const std::string& e : errors) why += (why.empty() ? "" : "; ") + e;
    std::lock_guard<std::mutex> lock(s.mu);
    s.start_error = why.empty() ? "node::CommonEnvironmentSetup::Create failed" : why;
    return;
  }
  v8::Isolate* isolate = setup->isolate();
  {
    v8::Locker locker(isolate);
    v8::Isolate::Scope isolate_scope(isolate);
    v8::HandleScope handle_scope(isolate);
    v8::Context::Scope context_scope(setup->context());
    isolate->AddNearHeapLimitCallback(OnNearHeapLimit, isolate);
    bool run;
    {
      // Exit may have come while the environment was being created: then
      // it never runs.
      std::lock_guard<std::mutex> lock(s.mu);
      run = !s.closing;
      if (run) s.env = setup->env();
    }
    if (run) {
      // process.exit() in here must end the report, not the process.
      node::SetProcessExitHandler(setup->env(), [](node::Environment* env, int) { node::Stop(env); });
      if (!node::LoadEnvironment(setup->env(), EntrySource(script), SkipApplicationPreloads).IsEmpty())
        node::SpinEventLoop(setup->env()).FromMaybe(1);
      std::lock_guard<std::mutex> lock(s.mu);
      s.env = nullptr;
    }
    node::Stop(setup->env());
    isolate->RemoveNearHeapLimitCallback(OnNearHeapLimit, 0);
  }
}

// Why a job that the script did not finish ends in the fallback.
std::string UnfinishedReason(State& s) {
  if (s.closing) return "report cut short by process exit (the reporter environment was stopped)";
  if (s.phase == Phase::kWaiting)
    return s.start_error.empty() ? "the reporter environment ended before it took the report"
                                 : "the reporter environment could not start: " + s.start_error;
  if (s.out_of_memory) return "the reporter environment ran out of memory";
  return "the reporter environment ended before the report was written";
}

void* ReporterThread(void*) {
  prctl(PR_SET_NAME, "gmr-reporter", 0, 0, 0);
  TestSleepMs(TestHook("reporter_delay_ms"));  // widens the window exit may come in
  State& s = S();
  node::MultiIsolatePlatform* platform;
  std::string script;
  bool from_snapshot;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    platform = s.platform;
    script = s.script;
    from_snapshot = s.builtin_snapshot;
  }
  RunEnvironment(s, platform, script, from_snapshot);
  malloc_trim(0);  // give the environment's memory back: nothing idles between reports
  std::shared_ptr<const Capture> job;
  Trigger trigger;
  std::string reason;
  bool unfinished;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    unfinished = s.phase != Phase::kFinished;
    if (ClaimFallback(s, &job, &trigger)) reason = UnfinishedReason(s);
  }
  if (job) WriteFallbackReport(*job, trigger, reason);
  // The script says when it is done; one that did not get so far cannot,
  // and the next trigger must not wait for it.
  if (unfinished) ReportDone();
  std::lock_guard<std::mutex> lock(s.mu);
  s.job.reset();
  s.phase = Phase::kNone;
  s.running = false;
  s.finished.notify_all();
  return nullptr;
}

// At the main environment's exit, before the platform goes: no environment
// starts any more; a report being written in one, or by the main thread
// (awaiting its sections), is cut short (the fallback writes what was
// captured); a report signal caught but not yet reported
// is captured and written by the fallback. All within kExitBound. Node
// also runs exit hooks when the process signals itself with no JS listener
// and then lives on: the main thread reopens when it next gets to run.
void StopAtExit(void*) {
  State& s = S();
  auto deadline = std::chrono::steady_clock::now() + kExitBound;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.closing = true;
    s.finished.notify_all();  // a launch waiting for the previous environment gives up
    if (s.env) node::Stop(s.env);
  }
  CutShortMainReport();  // this thread was writing it: it never will now
  bool reported = WaitForTriggeredReports(deadline);
  std::unique_lock<std::mutex> lock(s.mu);
  if (!s.finished.wait_until(lock, deadline, [&] { return !s.running; })) {
    // Stuck (in a system call, or still being created on a starved
    // machine): returning would free the platform under it.
    std::shared_ptr<const Capture> job;
    Trigger trigger;
    bool claimed = ClaimFallback(s, &job, &trigger);
    lock.unlock();
    std::string reason = "report cut short by process exit (the reporter environment did not stop within " +
                         std::to_string(kReporterExitBoundMs) + " ms)";
    if (claimed) WriteFallbackReport(*job, trigger, reason);
    std::string line = "guru-meditation: " + reason + "; the process ends now\n";
    ssize_t ignored = write(2, line.data(), line.size());
    (void)ignored;
    _exit(1);
  }
  if (!reported) {
    // Still being captured: the watchdog needs neither the platform nor
    // V8, and the process may end under it.
    std::string line = "guru-meditation: report cut short by process exit (still being captured after " +
                       std::to_string(kReporterExitBoundMs) + " ms)\n";
    ssize_t ignored = write(2, line.data(), line.size());
    (void)ignored;
  }
  if (s.schedule_reopen) s.schedule_reopen();
}

}  // namespace

void ConfigureReporterEnv(node::Environment* main_env, const std::string& script, bool builtin_snapshot) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  s.builtin_snapshot = builtin_snapshot;
  if (!s.platform) node::AtExit(main_env, StopAtExit, nullptr);
  s.platform = node::GetMultiIsolatePlatform(main_env);
  s.script = script;
}

void ConfigureReporterReopen(std::function<void()> schedule) {
  std::lock_guard<std::mutex> lock(S().mu);
  S().schedule_reopen = std::move(schedule);
}

void ReopenReporterEnv() {
  std::lock_guard<std::mutex> lock(S().mu);
  S().closing = false;
}

void SetReporterData(const std::string& json) {
  std::lock_guard<std::mutex> lock(S().mu);
  S().data = json;
}

std::string ReporterData() {
  std::lock_guard<std::mutex> lock(S().mu);
  return S().data;
}

std::string LaunchReporterEnv(std::shared_ptr<const Capture> capture, const Trigger& trigger) {
  State& s = S();
  std::unique_lock<std::mutex> lock(s.mu);
  // The previous report is written (ReportDone came first) but its
  // environment may still be tearing down.
  s.finished.wait_for(lock, kPreviousTimeout, [&] { return !s.running || s.closing; });
  if (s.closing) return "report cut short by process exit (no reporter environment starts while the process exits)";
  const std::string cannot = "the reporter environment could not start: ";
  if (!s.platform) return cannot + "none is configured";
  if (s.running) return cannot + "the previous report's environment has not ended after 5 s";
  if (TestHook("reporter_fail_launch")) return cannot + "injected failure (test hook reporter_fail_launch)";
  // Started from the watchdog, which blocks every signal, or from the main
  // thread: an ordinary thread all the same, which the capture signal must
  // reach. Under s.mu: it takes it before it looks for its job.
  sigset_t none;
  sigemptyset(&none);
  int rc = StartThread(ReporterThread, nullptr, kThreadStackBytes, none);
  if (rc != 0) return cannot + "no thread for it: " + strerror(rc);
  s.job = std::move(capture);
  s.job_trigger = trigger;
  s.phase = Phase::kWaiting;
  s.fallback_claimed = false;
  s.start_error.clear();
  s.out_of_memory = false;
  s.running = true;
  return "";
}

void EndReporterEnv() {
  std::lock_guard<std::mutex> lock(S().mu);
  // Only the loop is stopped: the script that asked is still running.
  if (S().env) node::Stop(S().env, node::StopFlags::kDoNotTerminateIsolate);
}

bool TakeReporterJob(std::shared_ptr<const Capture>* capture, Trigger* trigger, std::string* data) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.phase != Phase::kWaiting || !s.job) return false;
  s.phase = Phase::kTaken;
  *capture = s.job;
  *trigger = s.job_trigger;
  *data = s.data;
  // Failures after launch, for the tests: 1, the formatter throws (its data
  // is not JSON); 2, the environment is torn down under the report.
  long fail = TestHook("reporter_fail_after_launch");
  if (fail == 1) *data = "{";
  if (fail == 2 && s.env) node::Stop(s.env);
  return true;
}

void FinishReporterJob(const std::string& error) {
  State& s = S();
  std::shared_ptr<const Capture> job;
  Trigger trigger;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.phase != Phase::kTaken) return;
    if (!error.empty()) ClaimFallback(s, &job, &trigger);
    s.phase = Phase::kFinished;
  }
  if (job) WriteFallbackReport(*job, trigger, "the reporter failed: " + error);
  ReportDone();
}

}  // namespace gmr
