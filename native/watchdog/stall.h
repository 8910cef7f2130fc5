// Stall reports (the stallThreshold option): the watchdog notices when a
// JavaScript thread's event loop has not turned for longer than the
// threshold, from libuv's iteration count of each loop, read from the
// watchdog; nothing runs on the event loop for it. A loop that waits for
// events in its epoll is idle, not stalled: the thread's current system
// call (/proc/self/task/TID/syscall) tells them apart.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace gmr {

class StallWatch {
 public:
  // How often to look, for a threshold.
  static int PeriodMs(int threshold_ms);
  // The most samples a stall report folds, one per check. A stall is
  // reported after about four checks; samples are kept while any loop is
  // not turning, so two loops that take turns could otherwise grow them.
  static constexpr size_t kMaxSamples = 8;

  enum class State {
    kTurning,   // every loop turned or waits for events: nothing kept
    kSuspect,   // one has not turned since the last look: take a sample
    kStalled,   // one has not turned for threshold_ms: report, with the samples
  };
  // Looks at every loop. kStalled, with `detail` naming the thread and how
  // long, when one has stalled past threshold_ms. One report per stall: the
  // same stall is not reported again (nor sampled) until that loop turns.
  State Check(int threshold_ms, std::string* detail);

 private:
  struct Seen {
    uint64_t iterations;
    std::chrono::steady_clock::time_point since;  // last turn, or last seen waiting
    bool reported;
  };
  std::map<int, Seen> seen_;  // by tid
};

}  // namespace gmr
