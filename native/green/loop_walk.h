// The handles of a JavaScript thread's event loop, read from the watchdog
// while that thread runs, is blocked, or is stuck: the raw material of the
// Green Threads section (src/sections/green-threads.ts formats it).
//
// The loop belongs to its thread, which may open and close handles while
// they are read. Every read is a SafeRead (util/safe_read.h), so a handle
// freed meanwhile is at worst a wrong entry or a list cut short, never a
// fault; the walk is bounded and checks each link against its neighbour.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "promise_tracker.h"
#include "timer_tracker.h"

namespace gmr {

struct HandleInfo {
  std::string type;         // uv_handle_type_name: "tcp", "timer", ...
  bool active = false;
  bool ref = false;         // referenced: keeps the loop (and the process) alive
  bool closing = false;
  int fd = -1;
  // Sockets: "127.0.0.1:8080", "[::1]:443", a unix path; "" when none.
  std::string local, remote;
  bool listening = false;
  size_t write_queue_bytes = 0;
  // Timers: when due, in ms from now (negative: overdue), and repeat.
  bool has_due = false;
  int64_t due_in_ms = 0;
  uint64_t repeat_ms = 0;
  int pid = 0;              // process
  int signum = 0;           // signal
  std::string path;         // fs_event
  // Where the handle lies from the start of its thread's node::Environment
  // (Node's own handles are members of it); -1 when outside.
  int64_t environment_offset = -1;
};

struct LoopInfo {
  int tid = 0;
  int thread_id = -1;       // worker_threads threadId, -1 when not known
  unsigned active_handles = 0;
  unsigned active_requests = 0;
  // How long ago the loop last read its clock: at each turn, and when it
  // wakes from waiting.
  int64_t clock_age_ms = 0;
  bool waiting = false;     // blocked in its own epoll: idle
  int backend_fd = -1;      // its epoll descriptor (WaitingOnLoop asks again)
  std::vector<HandleInfo> handles;
  size_t more = 0;          // handles seen past the limit
  std::string problem;      // why the walk stopped early, "" when it did not
  PromiseSummary promises;  // its isolate's pending promises, when tracked
  TimerSummary timers;      // its JavaScript timers, when tracked
};

// Reads one loop. `max_details` bounds the handles described; the walk
// counts up to a fixed bound beyond.
LoopInfo WalkLoop(const uv_loop_t* loop, const void* environment, size_t max_details);

// True when thread `tid` is blocked waiting on `backend_fd`, the epoll fd
// of its own loop: an idle event loop (from /proc/self/task/TID/syscall).
bool WaitingOnLoop(int tid, int backend_fd);

// The loops of every JavaScript thread the registry knows
// (isolates/registry.h), walked under its lock, and their threads' pending
// promises and timers, summarized after it; `max_details` handles described
// per loop.
std::vector<LoopInfo> WalkLoops(size_t max_details);

}  // namespace gmr
