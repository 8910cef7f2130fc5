#include "stall.h"

#include <algorithm>
#include <cstdio>

#include <unistd.h>

#include "../isolates/registry.h"
#include "../green/loop_walk.h"

namespace gmr {
namespace {

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

StallWatch::State StallWatch::Check(int threshold_ms, std::string* detail) {
  auto now = std::chrono::steady_clock::now();
  std::map<int, Seen> next;
  bool found = false, suspect = false;
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
    } else if (!s.reported && it != seen_.end()) {
      suspect = true;  // not turned since the last look, and not waiting
    }
    next[p.tid] = s;
  }
  seen_.swap(next);
  return found ? State::kStalled : suspect ? State::kSuspect : State::kTurning;
}

}  // namespace gmr
