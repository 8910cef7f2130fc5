#include "stall.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <unistd.h>

#include "../capture/js_stacks.h"
#include "../util/proc.h"

namespace gmr {
namespace {

// x86_64 system call numbers a libuv loop waits in.
constexpr long kEpollWait = 232, kEpollPwait = 281, kEpollPwait2 = 441;

// True when thread `tid` is blocked waiting on the epoll fd of its own loop:
// an idle event loop. "running", another system call, or another epoll fd
// (execSync runs a loop of its own) is not idle.
bool WaitingOnLoop(int tid, int backend_fd) {
  std::string text = ReadProcFile("/proc/self/task/" + std::to_string(tid) + "/syscall");
  char* end = nullptr;
  long nr = strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || (nr != kEpollWait && nr != kEpollPwait && nr != kEpollPwait2)) return false;
  unsigned long fd = strtoul(end, nullptr, 16);
  return backend_fd >= 0 && fd == static_cast<unsigned long>(backend_fd);
}

std::string Describe(const LoopProgress& p, std::chrono::milliseconds stalled) {
  char seconds[32];
  snprintf(seconds, sizeof seconds, "%.1f", stalled.count() / 1000.0);
  std::string who = p.tid == getpid() ? "main thread"
                    : p.thread_id >= 0 ? "worker " + std::to_string(p.thread_id)
                                       : "worker";
  return who + " (tid " + std::to_string(p.tid) + "): its event loop has not turned for " + seconds + " s";
}

}  // namespace

int StallWatch::PeriodMs(int threshold_ms) { return std::max(25, threshold_ms / 4); }

bool StallWatch::Check(int threshold_ms, std::string* detail) {
  auto now = std::chrono::steady_clock::now();
  std::map<int, Seen> next;
  bool found = false;
  for (const LoopProgress& p : ReadLoopProgress()) {
    auto it = seen_.find(p.tid);
    Seen s = it != seen_.end() ? it->second : Seen{p.iterations, now, false};
    if (s.iterations != p.iterations) {
      s = {p.iterations, now, false};
    } else if (WaitingOnLoop(p.tid, p.backend_fd)) {
      s.since = now;  // idle: a stall starts when it stops waiting
    } else if (!s.reported && !found && now - s.since >= std::chrono::milliseconds(threshold_ms)) {
      s.reported = true;
      found = true;
      *detail = Describe(p, std::chrono::duration_cast<std::chrono::milliseconds>(now - s.since));
    }
    next[p.tid] = s;
  }
  seen_.swap(next);
  return found;
}

}  // namespace gmr
