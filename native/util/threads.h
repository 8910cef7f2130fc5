// Threads of ours, started detached with the signal mask they need: the
// watchdog and the fatal-signal helper block every signal (the report signal
// must go to a thread whose handler can run, a capture signal must not hit
// the capturer, a fatal signal should land on the thread that caused it);
// the reporter environment's thread blocks none (it is captured as any).
#pragma once

#include <signal.h>

#include <cstddef>

namespace gmr {

// Starts `main(arg)` on a detached thread with a stack of `stack_bytes` and
// the signal mask `mask`. Returns 0 or pthread_create's error number.
int StartThread(void* (*main)(void*), void* arg, size_t stack_bytes, const sigset_t& mask);

// StartThread with every signal blocked.
int StartQuietThread(void* (*main)(void*), void* arg, size_t stack_bytes);

}  // namespace gmr
