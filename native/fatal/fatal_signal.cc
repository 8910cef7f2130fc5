#include "fatal_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include <v8.h>

#include "../capture/own_isolate.h"
#include "../unwind/unwind.h"
#include "../util/proc.h"
#include "../util/safe_read.h"
#include "../util/signal_name.h"
#include "fatal_report.h"
#include "safe_text.h"

// V8's hook for embedders that handle SIGSEGV themselves: true when the
// fault was a WebAssembly bounds check V8 recovers from (it then rewrites
// the context). Node's headers leave it out; node exports it. Weak, so a
// binary without it only loses the check. Async-signal-safe by design.
namespace v8 {
__attribute__((weak)) bool TryHandleWebAssemblyTrapPosix(int sig_code, siginfo_t* info, void* context);
}

namespace gmr {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
constexpr int kHelperWaitMs = 2000;       // for the helper's whole report
constexpr int kHelperWriteWaitMs = 1000;  // more, once it is writing
constexpr size_t kStackCopyBytes = 128 * 1024;
constexpr size_t kAltStackBytes = 64 * 1024;
constexpr size_t kPageBytes = 4096;
constexpr int kMaxFallbackFrames = 48;

// The destination, immutable once published: a reconfiguration publishes a
// new one (the old one is leaked: a handler may be reading it).
struct Destination {
  char log_dir[4096];
  char service_name[256];
  char node_version[32];
};
std::atomic<const Destination*> g_dest{nullptr};

struct sigaction g_previous[NSIG];
bool g_installed[NSIG];

// The thread reporting a crash (0: none). Set once: a second fault, in the
// handler or elsewhere, does not report again.
std::atomic<int> g_guard{0};

// The handshake with the helper, a futex word.
enum Phase : int { kIdle = 0, kRequested = 1, kHelperWriting = 2, kHelperDone = 3, kAbandoned = 4, kHelperFaulted = 5 };

// The helper thread (fatal_report.cc), which takes its own faults to our
// handler (FatalHelperStarted): one there ends its part of the report.
std::atomic<int> g_helper_tid{0};
std::atomic<int> g_phase{kIdle};

CrashRecord g_record;
unsigned char g_stack_copy[kStackCopyBytes];
char g_text_buf[16 * 1024];

int64_t NowMs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);  // async-signal-safe
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void FutexWake(std::atomic<int>* word) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1 << 30, nullptr, nullptr, 0);
}

// Async-signal-safe: waits while *word == value, at most until deadline_ms
// (CLOCK_MONOTONIC). Returns the value seen last.
int FutexWaitWhile(std::atomic<int>* word, int value, int64_t deadline_ms) {
  for (;;) {
    int now_value = word->load(std::memory_order_acquire);
    if (now_value != value) return now_value;
    int64_t left = deadline_ms < 0 ? -1 : deadline_ms - NowMs(CLOCK_MONOTONIC);
    if (deadline_ms >= 0 && left <= 0) return now_value;
    timespec ts{time_t(left / 1000), long(left % 1000) * 1000000};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, deadline_ms < 0 ? nullptr : &ts, nullptr, 0);
  }
}

int Gettid() { return static_cast<int>(syscall(SYS_gettid)); }

const char* CodeName(int sig, int code) {
  switch (code) {
    case SI_USER: return "SI_USER: sent by kill";
    case SI_TKILL: return "SI_TKILL: sent by tgkill or raise";
    case SI_QUEUE: return "SI_QUEUE: sent by sigqueue";
    case SI_KERNEL: return "SI_KERNEL";
  }
  if (sig == SIGSEGV) {
    if (code == SEGV_MAPERR) return "SEGV_MAPERR: address not mapped";
    if (code == SEGV_ACCERR) return "SEGV_ACCERR: invalid permissions";
  }
  if (sig == SIGBUS) {
    if (code == BUS_ADRALN) return "BUS_ADRALN: invalid address alignment";
    if (code == BUS_ADRERR) return "BUS_ADRERR: nonexistent physical address";
    if (code == BUS_OBJERR) return "BUS_OBJERR: object-specific hardware error";
  }
  if (sig == SIGILL) {
    if (code == ILL_ILLOPC) return "ILL_ILLOPC: illegal opcode";
    if (code == ILL_ILLOPN) return "ILL_ILLOPN: illegal operand";
    if (code == ILL_PRVOPC) return "ILL_PRVOPC: privileged opcode";
  }
  if (sig == SIGFPE) {
    if (code == FPE_INTDIV) return "FPE_INTDIV: integer divide by zero";
    if (code == FPE_INTOVF) return "FPE_INTOVF: integer overflow";
    if (code == FPE_FLTDIV) return "FPE_FLTDIV: floating-point divide by zero";
  }
  return "";
}

// Async-signal-safe: civil date from the epoch (Howard Hinnant's algorithm).
void CivilFromUnix(int64_t secs, int* y, int* mo, int* d, int* h, int* mi, int* s) {
  int64_t days = secs / 86400, rem = secs % 86400;
  *h = int(rem / 3600);
  *mi = int(rem % 3600 / 60);
  *s = int(rem % 60);
  days += 719468;
  int64_t era = days / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = int(doy - (153 * mp + 2) / 5 + 1);
  *mo = int(mp < 10 ? mp + 3 : mp - 9);
  *y = int(yoe + era * 400 + (*mo <= 2 ? 1 : 0));
}

// Async-signal-safe: open(2) as every report file is (kNewFileFlags), under the
// name ordinary reports get (output.ts): <service>_gurumeditation_<UTC
// YYYYMMDDHHMMSS>, then _1, _2, ... Falls back to stderr.
int OpenDestination(const Destination* dest, int64_t unix_s) {
  if (!dest || !dest->log_dir[0]) return 2;
  int y, mo, d, h, mi, s;
  CivilFromUnix(unix_s, &y, &mo, &d, &h, &mi, &s);
  char path[4096 + 300];
  for (int i = 0; i < 1000; i++) {
    SafeText p(path, sizeof path - 1);
    p.Str(dest->log_dir).Char('/').Str(dest->service_name).Str("_gurumeditation_");
    p.Dec(uint64_t(y), 4).Dec(uint64_t(mo), 2).Dec(uint64_t(d), 2).Dec(uint64_t(h), 2).Dec(uint64_t(mi), 2).Dec(uint64_t(s), 2);
    if (i > 0) p.Char('_').Dec(uint64_t(i));
    if (p.truncated()) return 2;
    path[p.size()] = '\0';
    int fd = open(path, kNewFileFlags, kNewFileMode);
    if (fd >= 0) return fd;
    if (errno != EEXIST) break;
  }
  SafeText w(g_text_buf, sizeof g_text_buf);
  w.Str("guru-meditation: cannot create the fatal-signal report in ").Str(dest->log_dir).Str("; writing it to stderr\n");
  w.WriteTo(2);
  return 2;
}

// Async-signal-safe: the thread's name from /proc with open/read.
void ReadThreadName(int tid, char* out, size_t cap) {
  out[0] = '\0';
  char path[64];
  SafeText p(path, sizeof path - 1);
  p.Str("/proc/self/task/").Dec(int64_t(tid)).Str("/comm");
  path[p.size()] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, out, cap - 1);
  close(fd);
  if (n <= 0) return;
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\0')) n--;
  out[n] = '\0';
}

// Async-signal-safe: copies the stack from sp up (CopyMapped: an
// unmapped page ends the copy instead of faulting). Pages before the first
// readable one are zeros: after a stack overflow sp points into the guard
// page, and the frames above it are what the unwinder needs.
size_t CopyOwnStack(uintptr_t sp, unsigned char* out, size_t cap) {
  constexpr size_t kGuardPages = 4;  // nothing readable this near sp: no stack
  size_t skipped = 0;
  for (size_t page = 0; page < kGuardPages && skipped < cap; page++) {
    size_t got = CopyMapped(out + skipped, sp + skipped, cap - skipped);
    if (got > 0) return skipped + got;
    size_t len = std::min<size_t>(kPageBytes - ((sp + skipped) % kPageBytes), cap - skipped);
    memset(out + skipped, 0, len);
    skipped += len;
  }
  return 0;
}

// The crashing thread's own frames, when the helper did not answer: an
// executable mapping table read from /proc/self/maps with read(2), into
// static memory.
struct ExecMapping {
  uintptr_t start, end, offset;
  char name[160];
};
constexpr size_t kMaxExecMappings = 1024;
ExecMapping g_exec[kMaxExecMappings];
size_t g_exec_count = 0;
char g_maps_buf[8192];

uintptr_t ParseHex(const char*& p) {
  uintptr_t v = 0;
  for (;; p++) {
    char c = *p;
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return v;
    v = v * 16 + uintptr_t(digit);
  }
}

// Async-signal-safe: "start-end perms offset dev inode name" lines.
void ParseMapsLine(const char* line) {
  const char* p = line;
  ExecMapping m;
  m.start = ParseHex(p);
  if (*p++ != '-') return;
  m.end = ParseHex(p);
  if (*p++ != ' ') return;
  bool exec = p[2] == 'x';
  p += 5;
  m.offset = ParseHex(p);
  for (int field = 0; field < 2 && *p; field++) {  // dev, inode
    while (*p == ' ') p++;
    while (*p && *p != ' ') p++;
  }
  while (*p == ' ') p++;
  if (!exec || g_exec_count >= kMaxExecMappings) return;
  size_t i = 0;
  for (; p[i] && i < sizeof m.name - 1; i++) m.name[i] = p[i];
  m.name[i] = '\0';
  g_exec[g_exec_count++] = m;
}

void LoadExecMappings() {
  g_exec_count = 0;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char line[512];
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, g_maps_buf, sizeof g_maps_buf);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) {
      char c = g_maps_buf[i];
      if (c == '\n') {
        line[len] = '\0';
        ParseMapsLine(line);
        len = 0;
      } else if (len < sizeof line - 1) {
        line[len++] = c;
      }
    }
  }
  close(fd);
}

const ExecMapping* FindExec(uintptr_t pc) {
  for (size_t i = 0; i < g_exec_count; i++)
    if (pc >= g_exec[i].start && pc < g_exec[i].end) return &g_exec[i];
  return nullptr;
}

const char* Basename(const char* path) {
  const char* base = path;
  for (const char* p = path; *p; p++)
    if (*p == '/') base = p + 1;
  return base;
}

// Async-signal-safe: the pc, then the frame-pointer chain through the copy
// of the stack (node's own C++ has no frame pointers, so the chain may be
// short: this is the last resort, not the report).
void WriteOwnFrames(SafeText* w, const CrashRecord& r) {
  LoadExecMappings();
  w->Str("Native stack (the crashing thread's own: its pc and frame-pointer chain, unsymbolized):\n");
  uintptr_t pcs[kMaxFallbackFrames];
  int n = 0;
  pcs[n++] = r.regs.pc;
  uintptr_t fp = r.regs.fp, lo = r.regs.sp, hi = r.regs.sp + r.stack_size;
  while (n < kMaxFallbackFrames && fp >= lo && fp + 16 <= hi && fp % 8 == 0) {
    uintptr_t next, ret;
    memcpy(&next, r.stack + (fp - lo), 8);
    memcpy(&ret, r.stack + (fp - lo) + 8, 8);
    ret = StripReturnAddress(ret);  // one instruction (unwind.h)
    if (!FindExec(ret)) break;
    pcs[n++] = ret;
    if (next <= fp) break;
    fp = next;
  }
  for (int i = 0; i < n; i++) {
    w->Str("  #").Dec(uint64_t(i)).Str(i < 10 ? "   " : "  ").Hex(pcs[i], 16);
    if (const ExecMapping* m = FindExec(pcs[i])) {
      w->Str("  ").Str(m->name[0] ? Basename(m->name) : "[anonymous]").Char('+').Hex(pcs[i] - m->start + m->offset);
    } else {
      w->Str("  ??");
    }
    w->Char('\n');
  }
}

void WriteRule(SafeText* w) {
  for (int i = 0; i < 72; i++) w->Char('=');
  w->Char('\n');
}

// Async-signal-safe: the header's first lines, from the signal alone:
// written before anything that reads state the crash may have corrupted.
void WriteHeaderStart(SafeText* w, const CrashRecord& r) {
  WriteRule(w);
  w->Str("====").Centred("Guru Meditation: fatal signal", 64).Str("====\n");
  WriteRule(w);
  char name[16];
  w->Str("signal = ").Str(SignalName(r.sig, name, sizeof name)).Str(" (").Dec(r.sig).Str(")\n");
  w->Str("si_code = ").Dec(r.code);
  const char* code = CodeName(r.sig, r.code);
  if (code[0]) w->Str(" (").Str(code).Char(')');
  w->Char('\n');
  if (r.code > 0 && r.code != SI_KERNEL) w->Str("fault address = ").Hex(r.fault_address, 16).Char('\n');
}

// Async-signal-safe: the rest of the header, which needs r.isolate.
void WriteHeaderRest(SafeText* w, const CrashRecord& r, const Destination* dest, int64_t unix_ms) {
  char name[32];
  ReadThreadName(r.tid, name, sizeof name);
  w->Str("crashed thread = #").Dec(r.tid).Char(' ').Str(name).Str(" (");
  w->Str(r.tid == getpid() ? "main" : r.isolate ? "worker" : "other").Str(")\n");
  w->Str("pid = ").Dec(int64_t(getpid())).Char('\n');
  if (dest) {
    w->Str("service name = ").Str(dest->service_name).Char('\n');
    w->Str("node = ").Str(dest->node_version).Char('\n');
  }
  int y, mo, d, h, mi, s;
  CivilFromUnix(unix_ms / 1000, &y, &mo, &d, &h, &mi, &s);
  w->Str("generated at = ").Dec(uint64_t(y), 4).Char('-').Dec(uint64_t(mo), 2).Char('-').Dec(uint64_t(d), 2);
  w->Char('T').Dec(uint64_t(h), 2).Char(':').Dec(uint64_t(mi), 2).Char(':').Dec(uint64_t(s), 2).Char('.');
  w->Dec(uint64_t(unix_ms % 1000), 3).Str("Z\n");
  w->Str("after the report = the signal goes on to the action it had before (core dump and exit status unchanged)\n\n");
}

// Gives `sig` back to the action before ours (or the default) and makes it
// happen again: a fault the kernel raised recurs when the handler returns
// and the instruction runs again; a sent one (kill, raise, abort) is sent
// again, and stays pending until the handler returns. Async-signal-safe.
void ChainOn(int sig, const siginfo_t* info, bool to_default) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, to_default || !g_installed[sig] ? &dfl : &g_previous[sig], nullptr);
  if (info->si_code <= 0) syscall(SYS_tgkill, getpid(), Gettid(), sig);
}

// The handler. Async-signal-safe throughout: syscalls (open, read, write,
// futex, process_vm_readv or pread, sigaction, tgkill, clock_gettime),
// atomics, memcpy, AArch64's xpaclri hint (StripReturnAddress), SafeText
// on static buffers, and V8's trap check made for handlers. No
// allocation, no lock, no stdio.
void OnFatalSignal(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  if ((sig == SIGSEGV || sig == SIGBUS) && v8::TryHandleWebAssemblyTrapPosix &&
      v8::TryHandleWebAssemblyTrapPosix(sig, info, context)) {
    errno = saved_errno;
    return;  // a WebAssembly bounds check: V8 goes on from its landing pad
  }
  int tid = Gettid();
  if (tid == g_helper_tid.load(std::memory_order_acquire) && g_guard.load() != 0) {
    // The helper faulted while it wrote another thread's crash (the crash
    // may have broken what it reads). It ends here, for good: the crashing
    // thread writes its own frames and re-raises its own signal, so the
    // process ends, and dumps core, as the original crash would have.
    g_phase.store(kHelperFaulted, std::memory_order_release);
    FutexWake(&g_phase);
    for (;;) pause();
  }
  int expected = 0;
  if (!g_guard.compare_exchange_strong(expected, tid)) {
    if (expected != tid) {
      // Another thread is reporting: let it finish (bounded), then go on.
      FutexWaitWhile(&g_phase, kIdle, NowMs(CLOCK_MONOTONIC) + kHelperWaitMs);
      FutexWaitWhile(&g_phase, kRequested, NowMs(CLOCK_MONOTONIC) + kHelperWaitMs);
      FutexWaitWhile(&g_phase, kHelperWriting, NowMs(CLOCK_MONOTONIC) + kHelperWriteWaitMs);
    }
    // A fault inside our own handler: the default action, no report.
    ChainOn(sig, info, expected == tid);
    errno = saved_errno;
    return;
  }

  const Destination* dest = g_dest.load(std::memory_order_acquire);
  CrashRecord& r = g_record;
  r.sig = sig;
  r.code = info->si_code;
  r.fault_address = reinterpret_cast<uintptr_t>(info->si_addr);
  r.tid = tid;
  r.regs = RegistersFrom(static_cast<const ucontext_t*>(context));
  r.stack_size = CopyOwnStack(r.regs.sp, g_stack_copy, sizeof g_stack_copy);
  r.stack = g_stack_copy;
  r.fd = OpenDestination(dest, NowMs(CLOCK_REALTIME) / 1000);

  SafeText w(g_text_buf, sizeof g_text_buf);
  WriteHeaderStart(&w, r);
  w.WriteTo(r.fd);
  // V8's state is read once the header is out: a crash may have broken it.
  w.Clear();
  r.isolate = IsolateRunningHere();  // async-signal-safe (own_isolate.h)
  WriteHeaderRest(&w, r, dest, NowMs(CLOCK_REALTIME));
  w.WriteTo(r.fd);

  g_phase.store(kRequested, std::memory_order_release);
  FutexWake(&g_phase);
  int phase = FutexWaitWhile(&g_phase, kRequested, NowMs(CLOCK_MONOTONIC) + kHelperWaitMs);
  if (phase == kRequested) {
    int mine = kRequested;
    if (g_phase.compare_exchange_strong(mine, kAbandoned)) {
      w.Clear();
      w.Str("The helper thread did not finish the report within ").Dec(kHelperWaitMs).Str(" ms");
      w.Str(" (the crash may have left the heap or a lock unusable): the crashing thread only.\n\n");
      WriteOwnFrames(&w, r);
      w.WriteTo(r.fd);
    } else {
      phase = mine;
    }
  }
  if (phase == kHelperWriting)
    phase = FutexWaitWhile(&g_phase, kHelperWriting, NowMs(CLOCK_MONOTONIC) + kHelperWriteWaitMs);
  if (phase == kHelperFaulted) {
    w.Clear();
    w.Str("The helper thread faulted while it wrote the report (the crash may have left the heap or a");
    w.Str(" structure it reads broken): the crashing thread only.\n\n");
    WriteOwnFrames(&w, r);
    w.WriteTo(r.fd);
  }
  if (r.fd != 2) close(r.fd);
  ChainOn(sig, info, false);
  errno = saved_errno;
}

bool IsOurs(const struct sigaction& sa) {
  return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == OnFatalSignal;
}

std::atomic<bool> g_enabled{false};

// An alternate stack with a guard page below it (an overflow of the
// alternate stack faults cleanly), made this thread's. Its mapping, or
// nullptr when the thread has one of at least this size already, or none
// could be made.
void* GiveAltStack() {
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE) && current.ss_size >= kAltStackBytes) return nullptr;
  void* mem = mmap(nullptr, kAltStackBytes + kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  mprotect(mem, kPageBytes, PROT_NONE);
  stack_t ss;
  ss.ss_sp = static_cast<char*>(mem) + kPageBytes;
  ss.ss_size = kAltStackBytes;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) == 0) return mem;
  munmap(mem, kAltStackBytes + kPageBytes);
  return nullptr;
}

// The alternate stack this JavaScript thread got from FollowFatalAltStack.
thread_local void* t_alt_stack = nullptr;

// The main thread's alternate stack is kept for good; the workers' follow
// g_enabled (FollowFatalAltStack).
void Install() {
  GiveAltStack();
  for (int sig : kSignals) {
    struct sigaction current;
    if (sigaction(sig, nullptr, &current) != 0 || IsOurs(current)) continue;
    g_previous[sig] = current;
    g_installed[sig] = true;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnFatalSignal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
}

void Uninstall() {
  for (int sig : kSignals) {
    struct sigaction current;
    if (!g_installed[sig] || sigaction(sig, nullptr, &current) != 0) continue;
    // One installed after ours stays: it chains to us, or not, as it chose.
    if (IsOurs(current)) sigaction(sig, &g_previous[sig], nullptr);
    g_installed[sig] = false;
  }
}

void CopyString(char* out, size_t cap, const std::string& s) {
  size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
  memcpy(out, s.data(), n);
  out[n] = '\0';
}

}  // namespace

std::string ConfigureFatalSignals(const FatalConfig& config) {
  g_enabled = config.enabled;
  if (!config.enabled) {
    Uninstall();
    return "";
  }
  auto* dest = new Destination;
  CopyString(dest->log_dir, sizeof dest->log_dir, config.log_dir);
  CopyString(dest->service_name, sizeof dest->service_name, config.service_name);
  CopyString(dest->node_version, sizeof dest->node_version, config.node_version);
  g_dest.store(dest, std::memory_order_release);
  std::string error = StartFatalHelper();
  if (!error.empty()) return error;
  Install();
  return "";
}

void FollowFatalAltStack() {
  if (!g_enabled || t_alt_stack || syscall(SYS_gettid) == getpid()) return;
  t_alt_stack = GiveAltStack();
}

void ReleaseFatalAltStack() {
  if (!t_alt_stack) return;
  stack_t current;
  // Only while it is still ours: something may have replaced it since.
  if (sigaltstack(nullptr, &current) == 0 && current.ss_sp == static_cast<char*>(t_alt_stack) + kPageBytes) {
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    if (sigaltstack(&off, nullptr) != 0) return;  // in use: leave it mapped
  }
  munmap(t_alt_stack, kAltStackBytes + kPageBytes);
  t_alt_stack = nullptr;
}

const CrashRecord& WaitForCrash() {
  FutexWaitWhile(&g_phase, kIdle, -1);
  return g_record;
}

void FatalHelperStarted() {
  // The faults only: sent signals stay blocked here, as StartQuietThread
  // left them.
  sigset_t faults;
  sigemptyset(&faults);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigaddset(&faults, sig);
  pthread_sigmask(SIG_UNBLOCK, &faults, nullptr);
  g_helper_tid.store(Gettid(), std::memory_order_release);
}

bool BeginHelperWrite() {
  int expected = kRequested;
  return g_phase.compare_exchange_strong(expected, kHelperWriting);
}

void EndHelperWrite() {
  g_phase.store(kHelperDone, std::memory_order_release);
  FutexWake(&g_phase);
}

}  // namespace gmr
