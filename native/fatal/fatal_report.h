// The helper thread of the fatal-signal report (fatal_signal.h): started when
// the option is turned on, it reads the symbol tables then, and sleeps on a
// futex until a thread crashes. It then captures the other threads with the
// capture signal, unwinds and symbolizes every thread (the crashing one from
// the copy its handler made) and writes the Threads section. It is not a
// signal handler: it may allocate, and the crashing thread waits for it only
// so long.
#pragma once

#include <string>

namespace gmr {

// Starts the thread once. Returns "" or an error message.
std::string StartFatalHelper();

}  // namespace gmr
