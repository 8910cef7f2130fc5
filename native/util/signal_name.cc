#include "signal_name.h"

#include <signal.h>

namespace gmr {
namespace {

// Async-signal-safe: digits into buf[at..], NUL-terminated; the length.
size_t WriteDecimal(unsigned value, char* buf, size_t at, size_t size) {
  char digits[12];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < sizeof digits);
  while (n > 0 && at + 1 < size) buf[at++] = digits[--n];
  if (at < size) buf[at] = '\0';
  return at;
}

}  // namespace

const char* SignalName(int sig, char* buf, size_t size) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGCHLD: return "SIGCHLD";
    case SIGCONT: return "SIGCONT";
    case SIGTSTP: return "SIGTSTP";
    case SIGTTIN: return "SIGTTIN";
    case SIGTTOU: return "SIGTTOU";
    case SIGURG: return "SIGURG";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGVTALRM: return "SIGVTALRM";
    case SIGPROF: return "SIGPROF";
    case SIGWINCH: return "SIGWINCH";
    case SIGIO: return "SIGIO";
    case SIGPWR: return "SIGPWR";
    case SIGSYS: return "SIGSYS";
    default: break;
  }
  if (size == 0) return "";
  // SIGRTMIN reads a static of libc's: no lock.
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
    const char prefix[] = "SIGRTMIN+";
    size_t at = 0;
    for (const char* p = prefix; *p && at + 1 < size; p++) buf[at++] = *p;
    WriteDecimal(static_cast<unsigned>(sig - SIGRTMIN), buf, at, size);
    return buf;
  }
  WriteDecimal(sig < 0 ? 0u : static_cast<unsigned>(sig), buf, 0, size);
  return buf;
}

}  // namespace gmr
