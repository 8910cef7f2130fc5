#include "reporter_env.h"

#include <malloc.h>
#include <node.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <v8.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

namespace gmr {
namespace {

// V8 sets the isolate's stack limit about 1 MB below where it starts; the
// thread needs room beyond that for the C++ under it.
constexpr size_t kThreadStackBytes = 4 << 20;
// At exit, how long a running report may take to stop.
constexpr auto kStopTimeout = std::chrono::seconds(2);
// After exit hooks ran, how long a new report waits: a process that is really
// exiting is gone by then; one that lives on may have a stuck main thread
// that never reopens.
constexpr auto kReopenTimeout = std::chrono::milliseconds(250);
// How long a new report waits for the previous environment to go.
constexpr auto kPreviousTimeout = std::chrono::seconds(5);

// Heap-allocated, never destroyed: used while the process exits.
struct State {
  std::mutex mu;
  std::condition_variable finished;  // a report ended, or the process lives on (closing ended)
  node::MultiIsolatePlatform* platform = nullptr;
  bool closing = false;  // exit hooks ran: no new environment unless the process lives on
  std::function<void()> schedule_reopen;
  std::string script;
  std::string data;
  bool running = false;
  node::Environment* env = nullptr;  // the running environment, for Stop at exit
  std::unique_ptr<Capture> job;
  Trigger job_trigger;
};

State& S() {
  static State* state = new State;
  return *state;
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
// (-r, NODE_OPTIONS): an APM agent or the application's own set-up has no
// business in the reporter, so the loader is told to skip them.
void SkipApplicationPreloads(node::Environment*, v8::Local<v8::Value>, v8::Local<v8::Value> require) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::TryCatch try_catch(isolate);
  const char* source =
      "(function (require) { require('internal/modules/cjs/loader').Module._preloadModules = function () {} })";
  v8::Local<v8::String> code = v8::String::NewFromUtf8(isolate, source).ToLocalChecked();
  v8::Local<v8::Script> script;
  v8::Local<v8::Value> fn;
  if (!v8::Script::Compile(context, code).ToLocal(&script) || !script->Run(context).ToLocal(&fn) || !fn->IsFunction())
    return;
  v8::Local<v8::Value> argv[] = {require};
  if (fn.As<v8::Function>()->Call(context, v8::Undefined(isolate), 1, argv).IsEmpty()) return;  // preloads then run
}

void RunEnvironment(node::MultiIsolatePlatform* platform, const std::string& script) {
  std::vector<std::string> errors;
  std::vector<std::string> args = {"node"};
  std::vector<std::string> exec_args;
  // Not the owner of process state, no inspector, no signal handlers: a
  // guest of the process that leaves no trace.
  auto flags = static_cast<node::EnvironmentFlags::Flags>(
      node::EnvironmentFlags::kNoCreateInspector | node::EnvironmentFlags::kNoStartDebugSignalHandler |
      node::EnvironmentFlags::kNoRegisterESMLoader | node::EnvironmentFlags::kNoGlobalSearchPaths);
  auto setup = node::CommonEnvironmentSetup::Create(platform, &errors, args, exec_args, flags,
                                                    node::AllocateEnvironmentThreadId());
  if (!setup) {
    for (const std::string& e : errors) fprintf(stderr, "guru-meditation: cannot start the reporter: %s\n", e.c_str());
    return;
  }
  v8::Isolate* isolate = setup->isolate();
  {
    v8::Locker locker(isolate);
    v8::Isolate::Scope isolate_scope(isolate);
    v8::HandleScope handle_scope(isolate);
    v8::Context::Scope context_scope(setup->context());
    {
      std::lock_guard<std::mutex> lock(S().mu);
      S().env = setup->env();
    }
    // process.exit() in here must end the report, not the process.
    node::SetProcessExitHandler(setup->env(), [](node::Environment* env, int) { node::Stop(env); });
    if (!node::LoadEnvironment(setup->env(), EntrySource(script), SkipApplicationPreloads).IsEmpty())
      node::SpinEventLoop(setup->env()).FromMaybe(1);
    {
      std::lock_guard<std::mutex> lock(S().mu);
      S().env = nullptr;
    }
    node::Stop(setup->env());
  }
}

void* ReporterThread(void*) {
  prctl(PR_SET_NAME, "gmr-reporter", 0, 0, 0);
  // Created from the watchdog, which blocks every signal: this thread is an
  // ordinary one, which the capture signal must reach.
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, nullptr);
  State& s = S();
  node::MultiIsolatePlatform* platform;
  std::string script;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    platform = s.platform;
    script = s.script;
  }
  RunEnvironment(platform, script);
  bool untaken;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    untaken = s.job != nullptr;
  }
  // The script says when it is done (reporter.ts); one that failed before
  // taking its job cannot, and the next trigger must not wait for it.
  if (untaken) ReportDone();
  malloc_trim(0);  // give the environment's memory back: nothing idles between reports
  std::lock_guard<std::mutex> lock(s.mu);
  s.job.reset();
  s.running = false;
  s.finished.notify_all();
  return nullptr;
}

// At the main environment's exit: a report being written is stopped, and
// waited for (bounded), so that it does not run on while the platform goes.
// Node also runs exit hooks when the process signals itself with no JS
// listener (process.kill(process.pid, 'SIGUSR2')) and then lives on: the
// main thread reopens when it next gets to run.
void StopAtExit(void*) {
  State& s = S();
  std::unique_lock<std::mutex> lock(s.mu);
  if (s.env) node::Stop(s.env);
  s.finished.wait_for(lock, kStopTimeout, [&] { return !s.running; });
  s.closing = true;
  if (s.schedule_reopen) s.schedule_reopen();
}

}  // namespace

void ConfigureReporterEnv(node::Environment* main_env, const std::string& script) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
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
  S().finished.notify_all();
}

void SetReporterData(const std::string& json) {
  std::lock_guard<std::mutex> lock(S().mu);
  S().data = json;
}

std::string LaunchReporterEnv(std::unique_ptr<Capture>* capture, const Trigger& trigger) {
  State& s = S();
  std::unique_lock<std::mutex> lock(s.mu);
  s.finished.wait_for(lock, kReopenTimeout, [&] { return !s.closing; });
  s.closing = false;
  // The previous report is written (ReportDone came first) but its
  // environment may still be tearing down.
  s.finished.wait_for(lock, kPreviousTimeout, [&] { return !s.running; });
  if (!s.platform) return "no reporter environment is configured";
  if (s.running) return "the previous report's environment has not ended after 5 s";
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kThreadStackBytes);
  pthread_t thread;
  // Under s.mu: the thread takes it before it looks for its job.
  int rc = pthread_create(&thread, &attr, ReporterThread, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) return std::string("no thread for it: ") + strerror(rc);
  s.job = std::move(*capture);
  s.job_trigger = trigger;
  s.running = true;
  return "";
}

void EndReporterEnv() {
  std::lock_guard<std::mutex> lock(S().mu);
  // Only the loop is stopped: the script that asked is still running.
  if (S().env) node::Stop(S().env, node::StopFlags::kDoNotTerminateIsolate);
}

bool TakeReporterJob(std::unique_ptr<Capture>* capture, Trigger* trigger, std::string* data) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.job) return false;
  *capture = std::move(s.job);
  *trigger = s.job_trigger;
  *data = s.data;
  return true;
}

}  // namespace gmr
