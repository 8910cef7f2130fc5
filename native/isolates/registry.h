// The isolate registry: one entry per live JavaScript thread met so far
// (main, workers, the reporter's environment), so that an interrupt is only
// ever requested on a live isolate. An isolate becomes known when its thread
// loads the addon or first answers an interrupt; both register a Node
// environment cleanup hook, which runs on that thread before the isolate is
// disposed and takes the registry's lock, so anything done under that lock
// (an interrupt requested, a loop read) is done on a live isolate. An
// unknown isolate is only interrupted while its thread is held in the
// capture signal's handler (capture/thread_snapshot.h).
//
// What each thread switches on for itself (code map, promise and timer
// tracking, the fatal handlers' stack: isolates/switches.h) comes in
// through ThreadHooks, so this layer depends on none of those parts.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <uv.h>

#include "thread_identity.h"

namespace v8 {
class Isolate;
}

namespace gmr {

// Set once, at the addon's load (isolates/switches.cc), before any isolate
// is registered.
struct ThreadHooks {
  void (*follow)(v8::Isolate*);   // on the isolate's thread, once registered
  void (*cleanup)(v8::Isolate*);  // on its thread, before the isolate goes
  bool (*pending)(v8::Isolate*);  // a switch it has yet to follow (watchdog side)
};
void SetThreadHooks(ThreadHooks hooks);

// Async-signal-safe: lock-free scan of a fixed table.
bool IsolateKnown(v8::Isolate* isolate);

// On a JS thread with a Node environment: makes the current isolate known
// and has it follow the switches.
void RegisterCurrentIsolate();

// On the isolate's thread, inside a Node environment's context: makes it
// known (with its identity once it can tell it). False when the thread has
// no environment, or is a worker still bootstrapping met for the first time.
bool RegisterOnThread(v8::Isolate* isolate);

// On the isolate's thread: the switches, through ThreadHooks::follow.
void FollowSwitchesHere(v8::Isolate* isolate);

// The thread is our reporter environment's (reporter/reporter_env.cc names it).
bool OnReporterThread();

// Event-loop progress of every JavaScript thread with a Node environment
// (the reporter's excepted), read under the registry lock, so no loop is
// freed meanwhile. `iterations` is libuv's loop count.
struct LoopProgress {
  int tid;
  int thread_id;       // worker_threads threadId, -1 when not known
  uint64_t iterations;
  int backend_fd;      // the loop's epoll fd: waiting on it is idle, not stalled
};
std::vector<LoopProgress> ReadLoopProgress();

// Calls `fn` for every JavaScript thread with a Node environment (the
// reporter's excepted) under the registry lock: no loop is freed meanwhile.
struct LoopOwner {
  v8::Isolate* isolate;
  int tid;
  int thread_id;            // worker_threads threadId, -1 when not known
  const uv_loop_t* loop;
  const void* environment;  // its node::Environment
};
void ForEachLoop(const std::function<void(const LoopOwner&)>& fn);

// Asks every known isolate whose identity is not known yet to read it at its
// next interrupt check, and one with a switch still to follow to try again
// (one request outstanding each).
void RequestMissingIdentities();

// Some known isolate still has a switch to follow.
bool SwitchesPending();

// The worker identity of the known isolate running on thread `tid`.
ThreadIdentity IdentityOf(v8::Isolate* isolate, int tid);

// Entries in the registry (one per live JavaScript thread met).
size_t RegistrySize();

// The known isolate running on thread `tid`, nullptr when none: a thread
// that did not answer the capture signal is still known to run JavaScript.
v8::Isolate* KnownIsolateOn(int tid);

// Requests `callback` on `isolate` only while the isolate is known and alive
// (under the registry lock its cleanup hook also takes). False otherwise.
bool InterruptIfAlive(v8::Isolate* isolate, void (*callback)(v8::Isolate*, void*), void* data);

// The same for a report's JavaScript stacks: one such request outstanding
// per isolate, until InterruptAnswered. False when gone or one is already
// outstanding (still busy with an earlier report's).
bool InterruptOnce(v8::Isolate* isolate, void (*callback)(v8::Isolate*, void*), void* data);
void InterruptAnswered(v8::Isolate* isolate);

// Requests `callback` on every known isolate but `except`.
void InterruptAllBut(v8::Isolate* except, void (*callback)(v8::Isolate*, void*));

}  // namespace gmr
