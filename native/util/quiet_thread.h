// Threads of ours that no signal may reach: the watchdog (the report signal
// must go to a thread whose handler can run, and a capture signal must not
// hit the capturer) and the fatal-signal helper (a fatal signal should land
// on the thread that caused it).
#pragma once

#include <cstddef>

namespace gmr {

// Starts `main(arg)` on a detached thread with every signal blocked and a
// stack of `stack_bytes`. Returns 0 or pthread_create's error number.
int StartQuietThread(void* (*main)(void*), void* arg, size_t stack_bytes);

}  // namespace gmr
