#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

#include "../util/proc.h"
#include "../util/threads.h"
#include "../util/signal_name.h"
#include "attach.h"
#include "stall.h"

namespace gmr {
namespace {

// A reporter that never says it is done (its thread died mid-report) must not
// block reports forever.
constexpr auto kInFlightTimeout = std::chrono::seconds(30);

struct ApiRequest {
  CaptureSettings settings;
  Deliver deliver;
};

// Everything the watchdog thread and the JS threads share, under `mu`.
// Heap-allocated and never destroyed: the watchdog may run while the process
// exits and static destructors run.
struct Shared {
  std::mutex mu;
  WatchdogConfig config;
  int64_t trigger_baseline = 0;  // the trigger file's mtime when it was configured
  bool config_changed = false;
  Deliver reporter;
  int (*in_flight_watch)() = nullptr;  // see SetReporter
  bool in_flight = false;
  std::chrono::steady_clock::time_point in_flight_since;
  bool has_pending = false;  // a trigger that came while no reporter was attached
  Trigger pending;
  int coalesced = 0;
  std::deque<ApiRequest> api_requests;
  // Report signals the watchdog has read and dispatched (compared with
  // g_signals_seen), and `idle` told when no triggered report is left
  // (WaitForTriggeredReports).
  uint64_t signals_taken = 0;
  std::condition_variable idle;
  // A worker came online: meet the new threads at once, and again every
  // kMeetPeriod those that could not tell their identity yet, for at most
  // kMeetWindow. Threads met before are not signalled (MeetNewIsolates).
  std::chrono::steady_clock::time_point meet_until{};
};

constexpr auto kMeetPeriod = std::chrono::milliseconds(100);
constexpr auto kMeetWindow = std::chrono::seconds(2);

Shared* g_shared = nullptr;
std::atomic<bool> g_started{false};  // set once g_shared and the fds exist

// Written by the report signal's handler; read by the watchdog.
int g_signal_fd = -1;
// Report signals caught, counted by the handler before it wakes the watchdog.
std::atomic<uint64_t> g_signals_seen{0};
// Wakes the watchdog for API requests and configuration changes.
int g_control_fd = -1;

// The report signal and the action that was there before ours, to chain to.
// Each distinct action chained to gets an entry of a fixed table, written
// once and never changed or freed (a handler on another thread may still
// read the one before), then published with one atomic store before our
// handler is installed, so a handler never sees one half-written. A reclaim
// that finds an action already in the table reuses its entry: the table
// grows with the distinct actions an application installs, not with
// reclaims.
volatile sig_atomic_t g_report_signal = 0;
std::atomic<const struct sigaction*> g_previous{nullptr};
constexpr int kMaxPrevious = 32;
struct sigaction g_previous_table[kMaxPrevious];
int g_previous_count = 0;  // under ConfigureMutex (InstallReportHandler's callers)

bool SameAction(const struct sigaction& a, const struct sigaction& b) {
  if (a.sa_flags != b.sa_flags) return false;
  bool same_handler = (a.sa_flags & SA_SIGINFO) ? a.sa_sigaction == b.sa_sigaction : a.sa_handler == b.sa_handler;
  return same_handler && memcmp(&a.sa_mask, &b.sa_mask, sizeof a.sa_mask) == 0;
}

// The table's entry for `action`, added when new; nullptr when the table is
// full (the caller then leaves the signal as it is).
const struct sigaction* PreviousEntry(const struct sigaction& action) {
  for (int i = 0; i < g_previous_count; i++)
    if (SameAction(g_previous_table[i], action)) return &g_previous_table[i];
  if (g_previous_count == kMaxPrevious) return nullptr;
  g_previous_table[g_previous_count] = action;
  return &g_previous_table[g_previous_count++];
}

// Async-signal-safe: an atomic increment, write() to an eventfd (never
// blocks: EFD_NONBLOCK), an atomic load, then the previous handler, which was itself installed as
// a signal handler; the bracket is atomics (thread_snapshot.h). errno is
// preserved.
void OnReportSignal(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  EnterReportHandler(context);
  g_signals_seen.fetch_add(1, std::memory_order_relaxed);
  uint64_t one = 1;
  ssize_t ignored = write(g_signal_fd, &one, sizeof one);
  (void)ignored;
  const struct sigaction* previous = g_previous.load(std::memory_order_acquire);
  if (!previous) {
  } else if (previous->sa_flags & SA_SIGINFO) {
    if (previous->sa_sigaction) previous->sa_sigaction(sig, info, context);
  } else if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN) {
    previous->sa_handler(sig);
  }
  LeaveReportHandler();
  errno = saved_errno;
}

bool IsOurs(const struct sigaction& sa) {
  return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == OnReportSignal;
}

// Puts our handler in front of whatever handles `sig` now. The default and
// ignore actions are not chained to: the report signal must never kill the
// process or be lost.
void InstallReportHandler(int sig) {
  struct sigaction current;
  if (sigaction(sig, nullptr, &current) != 0) return;
  if (IsOurs(current)) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = OnReportSignal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  // The handler chained to runs with the signals it asked to be blocked:
  // libuv's blocks them all, as it takes a lock that a second signal's
  // handler on the same thread would wait for for ever.
  sa.sa_mask = current.sa_mask;
  // The action to chain to is published before our handler is installed;
  // this thread takes the signal only once both are done.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  const struct sigaction* previous = PreviousEntry(current);
  if (!previous) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return;
  }
  g_previous.store(previous, std::memory_order_release);
  g_report_signal = sig;
  sigaction(sig, &sa, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// Gives `sig` back to the action we chained to.
void UninstallReportHandler(int sig) {
  struct sigaction current;
  if (sigaction(sig, nullptr, &current) != 0 || !IsOurs(current)) return;
  const struct sigaction* previous = g_previous.load(std::memory_order_acquire);
  if (previous) sigaction(sig, previous, nullptr);
  g_report_signal = 0;
}

// The trigger file, watched with inotify on its directory (the file itself
// may be replaced) and, when asked or when inotify is unavailable, polled.
// A trigger is an mtime change, so the several events of one `touch` make
// one report.
constexpr int64_t kMissing = -1;

int64_t MtimeNs(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return kMissing;
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Why the trigger file cannot be trusted, or "" when it can: anyone who can
// write it could make this process write reports at will.
std::string Untrusted(const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return "it is a symbolic link";
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    return "it belongs to uid " + std::to_string(st.st_uid) + ", neither this process's user (uid " +
           std::to_string(geteuid()) + ") nor root";
  }
  if (st.st_mode & S_IWOTH) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return std::string("it is writable by others (mode ") + mode + ")";
  }
  return "";
}

class FileWatch {
 public:
  // `baseline` is the mtime when the file was configured: a touch between
  // configuration and this thread's reading it is still a trigger.
  void Reset(const std::string& path, int poll_interval_ms, int64_t baseline) {
    Close();
    path_ = path;
    poll_ms_ = poll_interval_ms;
    said_.clear();
    if (path_.empty()) return;
    last_mtime_ = baseline;
    size_t slash = path_.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash ? slash : 1);
    name_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ >= 0 &&
        inotify_add_watch(fd_, dir.c_str(),
                          IN_ATTRIB | IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_CREATE) < 0) {
      close(fd_);
      fd_ = -1;
    }
    if (fd_ < 0 && poll_ms_ <= 0) poll_ms_ = 1000;  // inotify failed: poll rather than go deaf
    Trusted();  // says at once when it is not
  }

  int fd() const { return fd_; }
  int poll_ms() const { return path_.empty() ? 0 : poll_ms_; }
  const std::string& path() const { return path_; }

  // Drains inotify events; true when the trigger file's mtime changed.
  bool OnEvents() {
    alignas(struct inotify_event) char buf[4096];
    bool ours = false;
    for (;;) {
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<struct inotify_event*>(p);
        if (ev->len && name_ == ev->name) ours = true;
        p += sizeof(struct inotify_event) + ev->len;
      }
    }
    return ours && Changed();
  }

  // True when the mtime changed and the file may be trusted; a change of a
  // file that may not is ignored, said once on stderr (until it is fixed).
  bool Changed() {
    int64_t now = MtimeNs(path_);
    if (now == last_mtime_) return false;
    last_mtime_ = now;
    return now != kMissing && Trusted();
  }

 private:
  bool Trusted() {
    struct stat st;
    if (lstat(path_.c_str(), &st) != 0) return false;
    std::string why = Untrusted(st);
    if (!why.empty() && why != said_) {
      std::string line = "guru-meditation: ignoring the trigger file " + path_ + ": " + why + "\n";
      ssize_t ignored = write(2, line.data(), line.size());
      (void)ignored;
    }
    said_ = why;
    return why.empty();
  }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  std::string path_, name_;
  std::string said_;  // the last reason a change was ignored for, said once
  int poll_ms_ = 0;
  int fd_ = -1;
  int64_t last_mtime_ = kMissing;
};

// Returns the eventfd's count: how many writes it folded (0 when none).
// The reads and the poll of this thread cannot return EINTR: it blocks
// every signal (Start).
uint64_t Drain(int fd) {
  uint64_t value, total = 0;
  while (read(fd, &value, sizeof value) == sizeof value) total += value;
  return total;
}

void Wake() {
  uint64_t one = 1;
  ssize_t ignored = write(g_control_fd, &one, sizeof one);
  (void)ignored;
}

// Called with shared.mu held. Starts a report now, or folds the trigger into
// the one in flight, or keeps it for when a reporter attaches.
// `trigger.coalesced` counts triggers already folded into this one (several
// signals read from the eventfd at once). Returns true when the caller
// should capture and deliver `out`.
bool TakeTrigger(Shared& s, const Trigger& trigger, Trigger* out) {
  auto now = std::chrono::steady_clock::now();
  if (s.in_flight && now - s.in_flight_since > kInFlightTimeout) s.in_flight = false;
  s.coalesced += trigger.coalesced;
  if (s.in_flight) {
    // Taken once the report in flight is written (ReportDone): it was
    // captured before this trigger came, and the one who sent it wants what
    // the process does now. However many come meanwhile, one report more
    // answers them all, folded into it; a CLI request takes the place (its
    // caller waits for its own file), the trigger it displaces folded too.
    if (!s.has_pending || !trigger.out_path.empty()) {
      if (s.has_pending) s.coalesced++;
      s.has_pending = true;
      s.pending = trigger;
      s.pending.coalesced = 0;
    } else {
      s.coalesced++;
    }
    return false;
  }
  if (!s.reporter) {
    if (s.has_pending) s.coalesced++;
    s.has_pending = true;
    s.pending = trigger;
    s.pending.coalesced = 0;
    return false;
  }
  *out = trigger;
  out->coalesced = s.coalesced;
  s.coalesced = 0;
  s.in_flight = true;
  s.in_flight_since = now;
  return true;
}

// `earlier`: a stall's samples, folded into its report (a trigger kept for
// later goes without them: they would be old by then).
void RunTrigger(const Trigger& trigger, std::vector<Capture> earlier = {}, int sample_interval_ms = 0) {
  Shared& s = *g_shared;
  Trigger go;
  CaptureSettings settings;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!TakeTrigger(s, trigger, &go)) return;
    settings = s.config.capture;
  }
  auto capture = std::make_unique<Capture>(CaptureProcess(settings));
  capture->earlier = std::move(earlier);
  capture->sample_interval_ms = sample_interval_ms;
  Deliver reporter;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    reporter = s.reporter;
  }
  // Not under the lock: delivering may wait (for the main thread to pick the
  // report up), and the main thread may need the lock meanwhile.
  if (!reporter || !reporter(std::move(capture), go)) ReportDone();
}

// One capture of a stall's window, kept until the stall is reported or the
// loop turns. Its loaded objects are the report's own capture's.
Capture SampleForStall() {
  CaptureSettings settings;
  {
    std::lock_guard<std::mutex> lock(g_shared->mu);
    settings = g_shared->config.capture;
  }
  Capture sample = CaptureProcess(settings);
  sample.objects.clear();
  sample.objects.shrink_to_fit();
  return sample;
}

void RunApiRequests() {
  Shared& s = *g_shared;
  for (;;) {
    ApiRequest request;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.api_requests.empty()) return;
      request = std::move(s.api_requests.front());
      s.api_requests.pop_front();
    }
    Trigger trigger{"api", "", 0, "", ""};
    request.deliver(std::make_unique<Capture>(CaptureProcess(request.settings)), trigger);
  }
}

// One meeting round while workers are starting; returns the poll timeout
// until the next one, or -1 when none is due.
int RunMeetRound() {
  Shared& s = *g_shared;
  SnapshotOptions options;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (std::chrono::steady_clock::now() >= s.meet_until) return -1;
    options = s.config.capture.threads;
  }
  if (MeetNewIsolates(options)) {
    std::lock_guard<std::mutex> lock(s.mu);
    s.meet_until = {};
    return -1;
  }
  return static_cast<int>(kMeetPeriod.count());
}

// The watchdog's thread name announces the report signal, "gmr-watchdog:12"
// (15 characters at most), "gmr-watchdog" without one: gmr <pid> reads it
// from /proc, so it sends the signal the process reports on, never one
// that Node itself takes (SIGUSR1 opens the inspector).
std::atomic<int> g_watchdog_tid{0};  // published once it has named itself

void WatchdogName(int report_signal, char (&name)[16]) {
  if (report_signal > 0 && report_signal < 100) snprintf(name, sizeof name, "gmr-watchdog:%d", report_signal);
  else snprintf(name, sizeof name, "gmr-watchdog");
}

// On the watchdog thread.
void NameWatchdog(int report_signal) {
  char name[16];
  WatchdogName(report_signal, name);
  prctl(PR_SET_NAME, name, 0, 0, 0);
}

// From the thread that configures it, so that the name is right once
// setupAutorun returns (gmr may look at once). Best effort: with no
// descriptor left, the watchdog renames itself when it applies the config.
void RenameWatchdog(int report_signal) {
  int tid = g_watchdog_tid.load(std::memory_order_acquire);
  if (tid == 0) return;
  char name[16];
  WatchdogName(report_signal, name);
  std::string comm = "/proc/self/task/" + std::to_string(tid) + "/comm";
  int fd = open(comm.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t ignored = write(fd, name, strlen(name));
  (void)ignored;
  close(fd);
}

void* WatchdogMain(void*) {
  NameWatchdog(0);
  g_watchdog_tid.store(static_cast<int>(syscall(SYS_gettid)), std::memory_order_release);
  Shared& s = *g_shared;
  FileWatch file;
  StallWatch stalls;
  std::vector<Capture> stall_samples;
  auto next_stall_check = std::chrono::steady_clock::now();
  for (;;) {
    bool pending = false;
    bool file_reset = false;
    Trigger pending_trigger;
    int stall_ms;
    int (*in_flight_watch)() = nullptr;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      stall_ms = s.config.stall_threshold_ms;
      if (s.in_flight) in_flight_watch = s.in_flight_watch;
      if (s.config_changed) {
        s.config_changed = false;
        NameWatchdog(s.config.report_signal);
        if (s.config.trigger_file != file.path() || s.config.poll_interval_ms != file.poll_ms()) {
          file.Reset(s.config.trigger_file, s.config.poll_interval_ms, s.trigger_baseline);
          file_reset = true;
        }
      }
      if (s.has_pending && s.reporter && !s.in_flight) {
        s.has_pending = false;
        pending = true;
        pending_trigger = s.pending;
      }
    }
    if (pending) RunTrigger(pending_trigger);
    // A touch before the watch was in place left no event to see.
    if (file_reset && file.Changed()) RunTrigger({"file", file.path(), 0, "", ""});

    struct pollfd fds[3] = {{g_signal_fd, POLLIN, 0}, {g_control_fd, POLLIN, 0}, {file.fd(), POLLIN, 0}};
    int nfds = file.fd() >= 0 ? 3 : 2;
    int timeout = file.poll_ms() > 0 ? file.poll_ms() : -1;
    int meet_ms = RunMeetRound();
    if (meet_ms >= 0) timeout = timeout < 0 ? meet_ms : std::min(timeout, meet_ms);
    // Not under s.mu: what it does may end the report (ReportDone).
    int watch_ms = in_flight_watch ? in_flight_watch() : -1;
    if (watch_ms >= 0) timeout = timeout < 0 ? watch_ms : std::min(timeout, watch_ms);
    // Stall reports are the one thing that wakes an idle watchdog, and only
    // when asked for.
    if (stall_ms <= 0) stall_samples.clear();  // turned off: nothing kept
    if (stall_ms > 0) {
      auto now = std::chrono::steady_clock::now();
      if (now >= next_stall_check) {
        std::string detail;
        const int period_ms = StallWatch::PeriodMs(stall_ms);
        switch (stalls.Check(stall_ms, &detail)) {
          case StallWatch::State::kTurning:
            stall_samples.clear();
            break;
          case StallWatch::State::kSuspect:
            // Only while a loop is not turning: an idle or healthy process
            // is never sampled.
            if (stall_samples.size() == StallWatch::kMaxSamples) stall_samples.erase(stall_samples.begin());
            stall_samples.push_back(SampleForStall());
            break;
          case StallWatch::State::kStalled:
            RunTrigger({"stall", detail, 0, "", ""}, std::move(stall_samples), period_ms);
            stall_samples.clear();
            break;
        }
        next_stall_check = std::chrono::steady_clock::now() + std::chrono::milliseconds(period_ms);
      }
      int until_check = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             next_stall_check - std::chrono::steady_clock::now()).count()) + 1;
      timeout = timeout < 0 ? until_check : std::min(timeout, until_check);
    }
    int rc = poll(fds, nfds, timeout);
    if (rc < 0) continue;  // EINTR: our signals are blocked here, but be safe
    if (rc == 0) {
      if (file.poll_ms() > 0 && file.Changed()) RunTrigger({"file", file.path(), 0, "", ""});
      continue;
    }
    if (fds[0].revents & POLLIN) {
      // Several signals before we woke are one request, the others folded into it.
      uint64_t signals = Drain(g_signal_fd);
      int folded = signals > 1 ? static_cast<int>(std::min<uint64_t>(signals - 1, 1 << 30)) : 0;
      char name[16];
      Trigger trigger{"signal", SignalName(g_report_signal, name, sizeof name), folded, "", ""};
      AttachRequest request;
      if (TakeAttachRequest(&request)) {
        trigger.kind = "cli";
        trigger.out_path = request.out_path;
        trigger.format = request.format;
      }
      RunTrigger(trigger);
      std::lock_guard<std::mutex> lock(s.mu);
      s.signals_taken += signals;
      s.idle.notify_all();
    }
    if (nfds == 3 && (fds[2].revents & POLLIN) && file.OnEvents())
      RunTrigger({"file", file.path(), 0, "", ""});
    if (fds[1].revents & POLLIN) {
      Drain(g_control_fd);
      RunApiRequests();
    }
  }
  return nullptr;
}

std::string Start() {
  g_shared = new Shared;
  // Before the application can take every descriptor: a report must come
  // even then (util/proc.h).
  ReserveReportDescriptors();
  g_signal_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  g_control_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (g_signal_fd < 0 || g_control_fd < 0) return std::string("eventfd: ") + strerror(errno);
  int rc = StartQuietThread(WatchdogMain, nullptr, 1 << 20);
  if (rc != 0) return std::string("cannot start the watchdog thread: ") + strerror(rc);
  // Named before it is renamed for the configuration (RenameWatchdog).
  for (int i = 0; i < 2000 && g_watchdog_tid.load(std::memory_order_acquire) == 0; i++) usleep(500);
  return "";
}

std::mutex& ConfigureMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}

}  // namespace

std::string ConfigureWatchdog(const WatchdogConfig& config) {
  std::lock_guard<std::mutex> configure(ConfigureMutex());
  if (!g_started) {
    std::string error = Start();
    if (!error.empty()) return error;
    g_started = true;
  }
  int old_signal = g_report_signal;
  if (old_signal && old_signal != config.report_signal) UninstallReportHandler(old_signal);
  if (config.report_signal) InstallReportHandler(config.report_signal);
  {
    int64_t baseline = config.trigger_file.empty() ? kMissing : MtimeNs(config.trigger_file);
    std::lock_guard<std::mutex> lock(g_shared->mu);
    g_shared->config = config;
    g_shared->trigger_baseline = baseline;
    g_shared->config_changed = true;
  }
  RenameWatchdog(config.report_signal);
  Wake();
  return "";
}

void ReclaimReportSignal() {
  std::lock_guard<std::mutex> configure(ConfigureMutex());
  if (!g_started) return;
  int sig;
  {
    std::lock_guard<std::mutex> lock(g_shared->mu);
    sig = g_shared->config.report_signal;
  }
  if (sig) InstallReportHandler(sig);
}

void SetReporter(Deliver deliver, int (*watch)()) {
  std::lock_guard<std::mutex> configure(ConfigureMutex());
  if (!g_started) return;
  {
    std::lock_guard<std::mutex> lock(g_shared->mu);
    g_shared->reporter = std::move(deliver);
    g_shared->in_flight_watch = watch;
    if (!g_shared->reporter) g_shared->in_flight = false;
    g_shared->idle.notify_all();
  }
  Wake();  // a trigger may be waiting for a reporter
}

void ReportDone() {
  if (!g_started) return;
  bool waiting;
  {
    std::lock_guard<std::mutex> lock(g_shared->mu);
    g_shared->in_flight = false;
    waiting = g_shared->has_pending;
    g_shared->idle.notify_all();
  }
  if (waiting) Wake();  // a trigger came while this report was written
}

bool WaitForTriggeredReports(std::chrono::steady_clock::time_point deadline) {
  if (!g_started) return true;
  Shared& s = *g_shared;
  std::unique_lock<std::mutex> lock(s.mu);
  return s.idle.wait_until(lock, deadline, [&] {
    bool pending = s.has_pending && s.reporter;
    return !s.in_flight && !pending && s.signals_taken == g_signals_seen.load(std::memory_order_relaxed);
  });
}

void RequestCapture(CaptureSettings settings, Deliver deliver) {
  {
    std::lock_guard<std::mutex> configure(ConfigureMutex());
    if (!g_started) {
      std::string error = Start();
      if (!error.empty()) {
        deliver(nullptr, Trigger{"api", error, 0, "", ""});
        return;
      }
      g_started = true;
    }
  }
  {
    std::lock_guard<std::mutex> lock(g_shared->mu);
    g_shared->api_requests.push_back({std::move(settings), std::move(deliver)});
  }
  Wake();
}

void RequestMeetNewIsolates() {
  if (!g_started) return;
  {
    std::lock_guard<std::mutex> lock(g_shared->mu);
    g_shared->meet_until = std::chrono::steady_clock::now() + kMeetWindow;
  }
  Wake();
}

int ReportSignal() { return g_report_signal; }

}  // namespace gmr
