// A signal's name for reports: "SIGUSR2", "SIGRTMIN+29", or its number.
#pragma once

#include <cstddef>

namespace gmr {

// Async-signal-safe (the fatal-signal report names its signal from its
// handler): a static string, or the name written into `buf`.
const char* SignalName(int sig, char* buf, size_t size);

}  // namespace gmr
