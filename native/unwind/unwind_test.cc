// Standalone test of the unwinder; not part of the addon build. Prints
// PASS/FAIL per check and exits non-zero on failure.
//
// Build and run from the repository root (-rdynamic lets dladdr name the
// test's functions), once per code generation the unwinder has to cope with:
//   for f in -O0 -O2 "-O2 -fomit-frame-pointer" "-O2 -fno-omit-frame-pointer"; do g++ $f -g -std=c++17 -pthread -rdynamic -Wall -Wextra native/unwind/unwind_test.cc native/unwind/unwind.cc -o /tmp/unwind_test -ldl && /tmp/unwind_test || echo "FAILED with $f"; done
// Also under -fsanitize=address,undefined, and valgrind (which skips the
// single-step test). An optional argument sets the number of garbage stacks.
//
// On AArch64 (cross-built with aarch64-linux-gnu-g++, run under qemu-aarch64
// by test/native-units.test.js) the same chains run, with AArch64 code where
// the test has its own: blocked, leaf, everywhere, JIT frames, garbage and
// corrupted stacks. Not there: crossing a signal frame (the unwinder does
// not read the kernel's sigcontext on AArch64), single-stepping (x86's trap
// flag) and the synthetic states (x86 code of their own).
//
// Other threads are stopped in known call chains (blocked in read(), busy in
// a leaf function, inside signal handlers, below a "JIT" frame without CFI)
// and sampled the way native/capture/ does: a signal handler copies the
// registers and the top of the stack, and the main thread unwinds the copy
// later. The frames must name the chain and match, return address for return
// address, what backtrace() (libgcc's unwinder) reported from inside the
// thread. Single-stepping covers every instruction boundary of a few
// functions (prologues, epilogues, a lazily bound PLT call through ld.so);
// synthetic states cover PLT stubs, function entries and objects loaded
// later; random and corrupted stacks check that garbage never crashes it.

#include "unwind.h"

#include <dlfcn.h>
#include <elf.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_DISABLE_ADDR_ERROR_REPORTING_IN_RANGE(addr, len)
#define VALGRIND_ENABLE_ADDR_ERROR_REPORTING_IN_RANGE(addr, len)
#define VALGRIND_MAKE_MEM_DEFINED(addr, len)
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

// No anonymous namespace: with -rdynamic, dladdr can name every function.

constexpr size_t kMaxCopy = 128 * 1024;
constexpr size_t kMaxFrames = 128;
constexpr uintptr_t kRedZone = 128;  // below rsp, copied with each sample

int failures = 0;

void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

// ---------------------------------------------------------------------------
// Samples, taken like native/capture/ does.

struct Snapshot {
  gmr::Registers regs;
  uintptr_t base = 0;
  std::vector<unsigned char> stack;

  gmr::StackCopy Copy() const {
    gmr::StackCopy c;
    c.base = base;
    c.size = stack.size();
    c.data = stack.data();
    return c;
  }
};

struct Frames {
  gmr::UnwoundFrame f[kMaxFrames];
  size_t n = 0;
};

Frames UnwindSnapshot(const Snapshot& s) {
  Frames out;
  out.n = gmr::Unwind(s.regs, s.Copy(), out.f, kMaxFrames);
  return out;
}

// The sampled thread's stack, so that the handler never copies past its top.
thread_local uintptr_t t_stack_lo, t_stack_hi;

void RecordStackBounds() {
  pthread_attr_t attr;
  void* addr;
  size_t size;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  t_stack_lo = reinterpret_cast<uintptr_t>(addr);
  t_stack_hi = t_stack_lo + size;
}

gmr::Registers g_sampled_regs;
uintptr_t g_sampled_base;
unsigned char g_sampled_stack[kMaxCopy];
size_t g_sampled_size;
sem_t g_sampled;

// Word by word rather than memcpy: AddressSanitizer would object to reading
// the poisoned redzones of other frames. Valgrind holds memory below rsp
// and parts of the signal frames it builds unaddressable; copying them
// anyway is the point.
__attribute__((no_sanitize_address)) void CopyStack(unsigned char* dst, uintptr_t src, size_t n) {
  VALGRIND_DISABLE_ADDR_ERROR_REPORTING_IN_RANGE(src, n);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t word = *reinterpret_cast<const volatile uint64_t*>(src + i);
    memcpy(dst + i, &word, 8);
  }
  VALGRIND_ENABLE_ADDR_ERROR_REPORTING_IN_RANGE(src, n);
  VALGRIND_MAKE_MEM_DEFINED(dst, n);
}

void OnSample(int, siginfo_t*, void* context) {
  const int saved_errno = errno;
  gmr::Registers& r = g_sampled_regs;
  r = gmr::RegistersFrom(static_cast<ucontext_t*>(context));
  g_sampled_size = 0;
  if (r.sp >= t_stack_lo && r.sp < t_stack_hi) {
    // The red zone below rsp too: signal delivery leaves it alone, and an
    // epilogue may just have popped registers from there.
    g_sampled_base = std::max(r.sp - kRedZone, t_stack_lo);
    g_sampled_size = std::min<size_t>(kMaxCopy, t_stack_hi - g_sampled_base) & ~size_t{7};
    CopyStack(g_sampled_stack, g_sampled_base, g_sampled_size);
  }
  sem_post(&g_sampled);
  errno = saved_errno;
}

Snapshot Sample(pthread_t thread) {
  pthread_kill(thread, SIGUSR1);
  while (sem_wait(&g_sampled) != 0) {
  }
  Snapshot s;
  s.regs = g_sampled_regs;
  s.base = g_sampled_base;
  s.stack.assign(g_sampled_stack, g_sampled_stack + g_sampled_size);
  return s;
}

// The snapshot without the red zone, as native/capture/ copies stacks.
Snapshot FromRsp(Snapshot s) {
  const size_t skip = std::min<size_t>(s.regs.sp - s.base, s.stack.size());
  s.stack.erase(s.stack.begin(), s.stack.begin() + skip);
  s.base += skip;
  return s;
}

void WaitUntilBlocked(pid_t tid) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  for (int i = 0; i < 2000; ++i) {
    char buf[512] = {};
    FILE* f = std::fopen(path.c_str(), "r");
    if (f != nullptr) {
      const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
      std::fclose(f);
      const char* paren = static_cast<const char*>(memrchr(buf, ')', n));
      if (paren != nullptr && paren[1] == ' ' && paren[2] == 'S') return;
    }
    usleep(1000);
  }
}

// ---------------------------------------------------------------------------
// Naming and comparing frames.

// A return address is looked up at pc - 1: a call may be the last
// instruction of a function.
std::string NameOf(const Frames& frames, size_t i) {
  const uintptr_t pc = frames.f[i].pc - (i > 0 ? 1 : 0);
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(pc), &info) == 0) return "?";
  const char* module = info.dli_fname ? strrchr(info.dli_fname, '/') : nullptr;
  std::string name = info.dli_sname ? info.dli_sname : "?";
  return name + " (" + (module ? module + 1 : "?") + ")";
}

bool InLibc(const Frames& frames, size_t i) {
  return NameOf(frames, i).find("(libc.so") != std::string::npos;
}

bool Named(const Frames& frames, size_t i, const char* symbol) {
  return i < frames.n && NameOf(frames, i).rfind(std::string(symbol) + " (", 0) == 0;
}

void Print(const Frames& frames) {
  static const char* const kMethods[] = {"context", "cfi", "fp", "x30"};
  for (size_t i = 0; i < frames.n; ++i) {
    std::printf("    #%-2zu %-7s 0x%012zx %s\n", i, kMethods[static_cast<int>(frames.f[i].method)],
                static_cast<size_t>(frames.f[i].pc), NameOf(frames, i).c_str());
  }
}

// Where symbol is, at or after from; frames.n if nowhere.
size_t IndexOf(const Frames& frames, const char* symbol, size_t from = 0) {
  for (size_t i = from; i < frames.n; ++i) {
    if (Named(frames, i, symbol)) return i;
  }
  return frames.n;
}

// What backtrace() said inside the thread.
struct Reference {
  void* pcs[kMaxFrames];
  int n = 0;

  // Inlined, so that the first entry is in the function taking the reference.
  __attribute__((always_inline)) void Take() { n = backtrace(pcs, kMaxFrames); }
  uintptr_t at(int i) const { return reinterpret_cast<uintptr_t>(pcs[i]); }

  // The entry of the function that took the reference: under the
  // sanitizers, backtrace() may add frames of its interceptor first.
  int Taker() const {
    Dl_info self, info;
    dladdr(reinterpret_cast<void*>(&RecordStackBounds), &self);
    int i = 0;
    while (i < n && (dladdr(pcs[i], &info) == 0 || info.dli_fbase != self.dli_fbase)) ++i;
    return i;
  }
};

// True if the frames above `taker`, the frame of the function that took the
// reference, are exactly those above it in the reference: same return
// addresses, up to the same outermost frame.
bool FollowsReference(const Frames& frames, size_t taker, const Reference& reference) {
  const size_t ours = taker + 1;
  const int ref = reference.Taker() + 1;
  if (ours >= frames.n || ref >= reference.n) return false;
  if (frames.n - ours != static_cast<size_t>(reference.n - ref)) return false;
  for (size_t i = ours; i < frames.n; ++i) {
    if (frames.f[i].pc != reference.at(ref + static_cast<int>(i - ours))) return false;
  }
  return true;
}

bool AllCfi(const Frames& frames, size_t from) {
  for (size_t i = from; i < frames.n; ++i) {
    if (frames.f[i].method != gmr::UnwindMethod::kCfi) return false;
  }
  return true;
}

volatile uint64_t g_sink;

// ---------------------------------------------------------------------------
// A thread blocked in read() below a() -> b() -> two_exits() -> c().

sem_t g_ready;
std::atomic<pid_t> g_tid;
Reference g_reference;

extern "C" __attribute__((noinline)) int gmr_test_c(int fd) {
  g_reference.Take();
  sem_post(&g_ready);
  char byte;
  const int r = static_cast<int>(read(fd, &byte, 1));
  return r + 1;  // + 1: no tail calls, so that every function keeps its frame
}

// int gmr_test_two_exits(int fd): -1 at once for a negative fd, else
// gmr_test_c(fd) + 1. The early exit's epilogue comes before the call, so
// the call's row is only right if DW_CFA_restore_state works.
#if defined(__x86_64__)
asm(R"(
  .text
  .globl gmr_test_two_exits
  .type gmr_test_two_exits, @function
gmr_test_two_exits:
  .cfi_startproc
  push %rbx
  .cfi_def_cfa_offset 16
  .cfi_offset %rbx, -16
  mov %edi, %ebx
  test %edi, %edi
  jns 1f
  .cfi_remember_state
  mov $-1, %eax
  pop %rbx
  .cfi_def_cfa_offset 8
  .cfi_restore %rbx
  ret
  .cfi_restore_state
1:
  call gmr_test_c
  add $1, %eax
  pop %rbx
  .cfi_def_cfa_offset 8
  .cfi_restore %rbx
  ret
  .cfi_endproc
  .size gmr_test_two_exits, .-gmr_test_two_exits
)");
#elif defined(__aarch64__)
asm(R"(
  .text
  .globl gmr_test_two_exits
  .type gmr_test_two_exits, %function
gmr_test_two_exits:
  .cfi_startproc
  stp x29, x30, [sp, #-16]!
  .cfi_def_cfa_offset 16
  .cfi_offset 29, -16
  .cfi_offset 30, -8
  mov x29, sp
  tbz w0, #31, 1f
  .cfi_remember_state
  mov w0, #-1
  ldp x29, x30, [sp], #16
  .cfi_restore 30
  .cfi_restore 29
  .cfi_def_cfa_offset 0
  ret
  .cfi_restore_state
1:
  bl gmr_test_c
  add w0, w0, #1
  ldp x29, x30, [sp], #16
  .cfi_restore 30
  .cfi_restore 29
  .cfi_def_cfa_offset 0
  ret
  .cfi_endproc
  .size gmr_test_two_exits, .-gmr_test_two_exits
)");
#endif
extern "C" int gmr_test_two_exits(int fd);

extern "C" __attribute__((noinline)) int gmr_test_b(int fd) { return gmr_test_two_exits(fd) + 1; }
// The string's destructor has to run if b throws: a's FDE gets an LSDA and a
// "zPLR" CIE, whose personality and LSDA encodings the unwinder must skip.
extern "C" __attribute__((noinline)) int gmr_test_a(int fd) {
  const std::string keep(40, 'a');
  return gmr_test_b(fd) + static_cast<int>(keep.size()) - 39;
}

extern "C" void* gmr_test_blocked_thread(void* arg) {
  RecordStackBounds();
  g_tid = static_cast<pid_t>(syscall(SYS_gettid));
  g_sink = gmr_test_a(static_cast<int>(reinterpret_cast<intptr_t>(arg)));
  return nullptr;
}

// Starts `body` on a thread with fd, waits until it has taken its reference
// and blocked, samples it, then lets it finish.
Frames SampleBlocked(void* (*body)(void*)) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pthread_t thread;
  pthread_create(&thread, nullptr, body, reinterpret_cast<void*>(static_cast<intptr_t>(fds[0])));
  sem_wait(&g_ready);
  WaitUntilBlocked(g_tid);
  const Snapshot s = FromRsp(Sample(thread));
  if (write(fds[1], "x", 1) != 1) std::abort();
  pthread_join(thread, nullptr);
  close(fds[0]);
  close(fds[1]);
  return UnwindSnapshot(s);
}

void TestBlockedChain() {
  const Frames frames = SampleBlocked(gmr_test_blocked_thread);
  std::printf("  blocked in read() below a -> b -> two_exits -> c:\n");
  Print(frames);
  const size_t c = IndexOf(frames, "gmr_test_c");
  Check(Named(frames, 0, "read") || Named(frames, 0, "__libc_read"), "blocked: frame 0 is read");
  // A sanitizer's interceptor for read() may come between read and c.
  Check(c <= 2 && Named(frames, c + 1, "gmr_test_two_exits") &&
            Named(frames, c + 2, "gmr_test_b") && Named(frames, c + 3, "gmr_test_a"),
        "blocked: c, two_exits, b, a in order");
  Check(Named(frames, c + 4, "gmr_test_blocked_thread") &&
            InLibc(frames, frames.n - 1),
        "blocked: then the thread's start routine, and libc (start_thread, clone)");
  Check(FollowsReference(frames, c, g_reference),
        "blocked: from two_exits up to clone, identical to the thread's own backtrace()");
  Check(AllCfi(frames, 1), "blocked: every frame found through CFI");
}

// ---------------------------------------------------------------------------
// A thread inside a signal handler: the walk crosses the signal frame.

Reference g_handler_reference;
int g_handler_fd;

extern "C" __attribute__((noinline)) void gmr_test_in_handler() {
  g_handler_reference.Take();
  sem_post(&g_ready);
  char byte;
  g_sink = read(g_handler_fd, &byte, 1);
}

uintptr_t g_parked_pc;  // where the handler interrupted the thread

void OnPark(int signal, siginfo_t*, void* context) {
#if defined(__x86_64__)
  greg_t& pc = static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP];
  constexpr int kTrapBytes = 2;  // ud2
#else
  auto& pc = static_cast<ucontext_t*>(context)->uc_mcontext.pc;
  constexpr int kTrapBytes = 4;  // udf #0
#endif
  g_parked_pc = pc;
  gmr_test_in_handler();
  if (signal == SIGILL) pc += kTrapBytes;  // past the trap
}

extern "C" __attribute__((noinline)) int gmr_test_signal_b() {
  pthread_kill(pthread_self(), SIGUSR2);
  return 1;
}
extern "C" __attribute__((noinline)) int gmr_test_signal_a() { return gmr_test_signal_b() + 1; }

void* SignalledThread(void* arg) {
  RecordStackBounds();
  g_tid = static_cast<pid_t>(syscall(SYS_gettid));
  g_handler_fd = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  g_sink = gmr_test_signal_a();
  return nullptr;
}

void TestSignalFrame() {
  const Frames frames = SampleBlocked(SignalledThread);
  std::printf("  blocked in a SIGUSR2 handler raised in signal_a -> signal_b:\n");
  Print(frames);
  const size_t in_handler = IndexOf(frames, "gmr_test_in_handler");
  const size_t b = IndexOf(frames, "gmr_test_signal_b", in_handler);
  Check(in_handler <= 2 && b < frames.n && Named(frames, b + 1, "gmr_test_signal_a"),
        "signal frame: handler, then signal_b and signal_a below the signal frame");
  Check(FollowsReference(frames, in_handler, g_handler_reference),
        "signal frame: identical to the handler's own backtrace()");
}

// A signal taken at the first instruction of a function: the pc below the
// signal frame is exact, and pc - 1 would be in the decoy before it. ud2
// raises SIGILL with the pc on itself; OnPark then skips it.
#if defined(__x86_64__)
asm(R"(
  .text
  .p2align 4
  .type gmr_test_decoy, @function
gmr_test_decoy:
  .cfi_startproc
  .cfi_def_cfa_offset 4096
  ud2
  .cfi_endproc
  .size gmr_test_decoy, .-gmr_test_decoy
  .globl gmr_test_entry_trap
  .type gmr_test_entry_trap, @function
gmr_test_entry_trap:
  .cfi_startproc
  ud2
  ret
  .cfi_endproc
  .size gmr_test_entry_trap, .-gmr_test_entry_trap
)");
#elif defined(__aarch64__)
asm(R"(
  .text
  .p2align 4
  .type gmr_test_decoy, %function
gmr_test_decoy:
  .cfi_startproc
  .cfi_def_cfa_offset 4096
  udf #0
  .cfi_endproc
  .size gmr_test_decoy, .-gmr_test_decoy
  .globl gmr_test_entry_trap
  .type gmr_test_entry_trap, %function
gmr_test_entry_trap:
  .cfi_startproc
  udf #0
  ret
  .cfi_endproc
  .size gmr_test_entry_trap, .-gmr_test_entry_trap
)");
#endif
extern "C" void gmr_test_entry_trap();

extern "C" __attribute__((noinline)) int gmr_test_entry_caller() {
  gmr_test_entry_trap();
  return 1;
}

extern "C" void* gmr_test_entry_thread(void* arg) {
  RecordStackBounds();
  g_tid = static_cast<pid_t>(syscall(SYS_gettid));
  g_handler_fd = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  g_sink = gmr_test_entry_caller();
  return nullptr;
}

void TestSignalAtFunctionEntry() {
  const Frames frames = SampleBlocked(gmr_test_entry_thread);
  const uintptr_t entry = reinterpret_cast<uintptr_t>(gmr_test_entry_trap);
  std::printf("  in a SIGILL handler, from the first instruction of a function:\n");
  Print(frames);
  size_t i = 0;
  while (i < frames.n && frames.f[i].pc != entry) ++i;
  Check(g_parked_pc == entry && i < frames.n && Named(frames, i + 1, "gmr_test_entry_caller") &&
            Named(frames, i + 2, "gmr_test_entry_thread"),
        "signal frame: the interrupted pc is exact (first instruction of a function)");
}

// ---------------------------------------------------------------------------
// A thread spinning in a leaf function, sampled wherever it happens to be.

int g_stop;  // set and polled with __atomic builtins: inlined even at -O0
Reference g_spin_reference;

extern "C" __attribute__((noinline)) void gmr_test_spin(int* stop) {
  while (__atomic_load_n(stop, __ATOMIC_RELAXED) == 0) {
  }
}

extern "C" __attribute__((noinline)) int gmr_test_spin_caller() {
  g_spin_reference.Take();
  sem_post(&g_ready);
  gmr_test_spin(&g_stop);
  return 1;
}

void* SpinThread(void*) {
  RecordStackBounds();
  g_sink = gmr_test_spin_caller();
  return nullptr;
}

void TestLeaf() {
  __atomic_store_n(&g_stop, 0, __ATOMIC_RELAXED);
  pthread_t thread;
  pthread_create(&thread, nullptr, SpinThread, nullptr);
  sem_wait(&g_ready);
  usleep(10000);
  bool ok = true;
  Frames frames;
  for (int i = 0; i < 50 && ok; ++i) {
    frames = UnwindSnapshot(FromRsp(Sample(thread)));
    ok = Named(frames, 0, "gmr_test_spin") && Named(frames, 1, "gmr_test_spin_caller") &&
         FollowsReference(frames, 1, g_spin_reference) && AllCfi(frames, 1);
  }
  __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
  pthread_join(thread, nullptr);
  std::printf("  spinning in a leaf function:\n");
  Print(frames);
  Check(ok, "leaf: 50 samples of a busy leaf function unwind like backtrace()");
}

// ---------------------------------------------------------------------------
// A thread calling functions in a tight loop: samples land in prologues,
// epilogues and everything between.

Reference g_stress_reference;

extern "C" __attribute__((noinline)) uint64_t gmr_test_leaf(uint64_t x) {
  return (x * 0x9e3779b97f4a7c15ull) ^ (x >> 29);
}

// Values live across calls force callee-saved registers to be pushed and
// popped; the array forces a stack frame.
extern "C" __attribute__((noinline)) uint64_t gmr_test_mid(uint64_t x) {
  volatile uint64_t buf[4];
  const uint64_t a = x + 1, b = x * 3, c = x ^ 5, d = x - 7;
  for (int i = 0; i < 4; ++i) buf[i] = gmr_test_leaf(a + i);
  return a * b + c * d + buf[1] + gmr_test_leaf(d);
}

extern "C" __attribute__((noinline)) int gmr_test_stress() {
  g_stress_reference.Take();
  sem_post(&g_ready);
  uint64_t x = 1;
  while (__atomic_load_n(&g_stop, __ATOMIC_RELAXED) == 0) x = gmr_test_mid(x);
  g_sink = x;
  return 1;
}

// True if the frames reach `function` within the first max_index + 1 frames
// and from there on follow the backtrace() it took, by CFI all the way.
bool ReachesThrough(const Frames& frames, const char* function, size_t max_index,
                    const Reference& reference) {
  const size_t i = IndexOf(frames, function);
  return i <= max_index && FollowsReference(frames, i, reference) && AllCfi(frames, 1);
}

void* StressThread(void*) {
  RecordStackBounds();
  g_sink = gmr_test_stress();
  return nullptr;
}

void TestEverywhere() {
  __atomic_store_n(&g_stop, 0, __ATOMIC_RELAXED);
  pthread_t thread;
  pthread_create(&thread, nullptr, StressThread, nullptr);
  sem_wait(&g_ready);
  const uintptr_t mid = reinterpret_cast<uintptr_t>(gmr_test_mid);
  const uintptr_t leaf = reinterpret_cast<uintptr_t>(gmr_test_leaf);
  std::set<uintptr_t> pcs;
  int bad = 0, samples = 0, at_entry_or_ret = 0;
  for (; samples < 3000; ++samples) {
    const Snapshot s = Sample(thread);
    // Wherever the sample landed, the walk must get back to gmr_test_stress
    // and from there follow the reference, with or without the red zone.
    for (const Snapshot& copy : {s, FromRsp(s)}) {
      const Frames frames = UnwindSnapshot(copy);
      const bool ok = ReachesThrough(frames, "gmr_test_stress", 2, g_stress_reference);
      if (!ok && bad++ == 0) {
        std::printf("  first bad sample:\n");
        Print(frames);
      }
    }
    pcs.insert(s.regs.pc);
#if defined(__x86_64__)
    const bool at_ret = *reinterpret_cast<const uint8_t*>(s.regs.pc) == 0xc3;
#else
    const bool at_ret = *reinterpret_cast<const uint32_t*>(s.regs.pc) == 0xd65f03c0;
#endif
    if (s.regs.pc == mid || s.regs.pc == leaf || at_ret) ++at_entry_or_ret;
  }
  __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
  pthread_join(thread, nullptr);
  Check(bad == 0, "everywhere: " + std::to_string(samples) + " samples of a call-heavy loop (" +
                      std::to_string(pcs.size()) + " distinct pcs, " +
                      std::to_string(at_entry_or_ret) + " at a function entry or ret), " +
                      std::to_string(bad) + " bad");
}

#if defined(__x86_64__)
// ---------------------------------------------------------------------------
// Every instruction boundary of gmr_test_mid and gmr_test_leaf, and of a
// first call through the PLT (stub, then ld.so's lazy binding resolver): the
// trap flag makes each instruction raise SIGTRAP, whose handler snapshots the
// thread. Valgrind doesn't emulate the trap flag; the test is skipped there.

// uint64_t gmr_test_single_step(uint64_t (*fn)(uint64_t), uint64_t x): fn(x)
// with the trap flag set. OnStep clears it when fn returns to ..._done.
asm(R"(
  .text
  .globl gmr_test_single_step
  .type gmr_test_single_step, @function
gmr_test_single_step:
  .cfi_startproc
  sub $8, %rsp
  .cfi_def_cfa_offset 16
  mov %rdi, %rax
  mov %rsi, %rdi
  pushfq
  .cfi_def_cfa_offset 24
  orq $0x100, (%rsp)
  popfq
  .cfi_def_cfa_offset 16
  call *%rax
  .globl gmr_test_single_step_done
gmr_test_single_step_done:
  add $8, %rsp
  .cfi_def_cfa_offset 8
  ret
  .cfi_endproc
  .size gmr_test_single_step, .-gmr_test_single_step
)");
extern "C" uint64_t gmr_test_single_step(uint64_t (*fn)(uint64_t), uint64_t x);
extern "C" char gmr_test_single_step_done[];

// Calls getppid for the first time: through the PLT and, with lazy binding,
// ld.so's resolver.
extern "C" __attribute__((noinline)) uint64_t gmr_test_via_plt(uint64_t x) {
  return x + static_cast<uint64_t>(getppid());
}

// Snapshots, stored in memory allocated up front: the handler can't allocate.
struct StepState {
  gmr::Registers regs;
  uintptr_t base;
  size_t offset, size;  // in g_step_arena
};
std::vector<StepState> g_step_states;
std::vector<unsigned char> g_step_arena;
size_t g_step_count, g_arena_used;
Reference g_step_reference;

void OnStep(int, siginfo_t*, void* context) {
  greg_t* g = static_cast<ucontext_t*>(context)->uc_mcontext.gregs;
  if (g[REG_RIP] == reinterpret_cast<greg_t>(gmr_test_single_step_done)) {
    g[REG_EFL] &= ~0x100;
    return;
  }
  if (g_step_count == g_step_states.size()) return;
  StepState& s = g_step_states[g_step_count];
  s.regs = {static_cast<uintptr_t>(g[REG_RIP]), static_cast<uintptr_t>(g[REG_RSP]),
            static_cast<uintptr_t>(g[REG_RBP]), static_cast<uintptr_t>(g[REG_RBX]),
            static_cast<uintptr_t>(g[REG_R12]), static_cast<uintptr_t>(g[REG_R13]),
            static_cast<uintptr_t>(g[REG_R14]), static_cast<uintptr_t>(g[REG_R15])};
  s.base = std::max(s.regs.sp - kRedZone, t_stack_lo);
  s.size = (t_stack_hi - s.base) & ~size_t{7};  // a fresh thread: a few KiB
  s.offset = g_arena_used;
  if (s.size > g_step_arena.size() - g_arena_used) return;
  CopyStack(&g_step_arena[s.offset], s.base, s.size);
  g_arena_used += s.size;
  ++g_step_count;
}

extern "C" __attribute__((noinline)) int gmr_test_step_caller() {
  g_step_reference.Take();
  g_sink = gmr_test_single_step(gmr_test_mid, g_sink);
  g_sink = gmr_test_single_step(gmr_test_via_plt, g_sink);
  return 1;
}

void* StepThread(void*) {
  RecordStackBounds();
  g_sink = gmr_test_step_caller();
  return nullptr;
}

void TestEveryInstruction() {
  g_step_states.resize(50000);
  g_step_arena.resize(size_t{256} << 20);
  g_step_count = g_arena_used = 0;
  struct sigaction sa = {};
  sa.sa_sigaction = OnStep;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTRAP, &sa, nullptr);
  pthread_t thread;
  pthread_create(&thread, nullptr, StepThread, nullptr);
  pthread_join(thread, nullptr);
  if (g_step_count == 0) {
    std::printf("SKIP every instruction: no SIGTRAP (valgrind?)\n");
    return;
  }
  size_t bad = 0, in_ld_so = 0;
  for (size_t i = 0; i < g_step_count; ++i) {
    const StepState& state = g_step_states[i];
    Snapshot s;
    s.regs = state.regs;
    s.base = state.base;
    s.stack.assign(&g_step_arena[state.offset], &g_step_arena[state.offset] + state.size);
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(s.regs.pc), &info) && strstr(info.dli_fname, "ld-linux")) {
      ++in_ld_so;
    }
    // Without the red zone too, as native/capture/ copies stacks.
    for (const Snapshot& copy : {s, FromRsp(s)}) {
      const Frames frames = UnwindSnapshot(copy);
      if (!ReachesThrough(frames, "gmr_test_step_caller", kMaxFrames, g_step_reference) &&
          bad++ == 0) {
        std::printf("  first bad step:\n");
        Print(frames);
      }
    }
  }
  Check(bad == 0 && g_step_count < g_step_states.size(),
        "every instruction: " + std::to_string(g_step_count) +
            " single-stepped states of gmr_test_mid, gmr_test_leaf and a first PLT call (" +
            std::to_string(in_ld_so) + " in ld.so), " + std::to_string(bad) + " bad");
  g_step_states = {};
  g_step_arena = {};
}

#endif  // single-stepping

// ---------------------------------------------------------------------------
// Frame-pointer code without CFI, like V8's JIT code: a trampoline in an
// anonymous executable mapping.

#if defined(__x86_64__)
// push rbp; mov rbp, rsp; mov rax, rdi; mov rdi, rsi; call rax; pop rbp; ret
const unsigned char kTrampoline[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x89, 0xf8, 0x48,
                                     0x89, 0xf7, 0xff, 0xd0, 0x5d, 0xc3};
// push rbp; mov rbp, rsp; 1: mov eax, [rdi]; test eax, eax; jz 1b; pop rbp; ret
const unsigned char kSpinUntilSet[] = {0x55, 0x48, 0x89, 0xe5, 0x8b, 0x07,
                                       0x85, 0xc0, 0x74, 0xfa, 0x5d, 0xc3};
#else
// stp x29, x30, [sp, #-16]!; mov x29, sp; mov x2, x0; mov x0, x1; blr x2;
// ldp x29, x30, [sp], #16; ret
const uint32_t kTrampoline[] = {0xa9bf7bfd, 0x910003fd, 0xaa0003e2, 0xaa0103e0,
                                0xd63f0040, 0xa8c17bfd, 0xd65f03c0};
// stp x29, x30, [sp, #-16]!; mov x29, sp; 1: ldr w1, [x0]; cbz w1, 1b;
// ldp x29, x30, [sp], #16; ret
const uint32_t kSpinUntilSet[] = {0xa9bf7bfd, 0x910003fd, 0xb9400001, 0x34ffffe1,
                                  0xa8c17bfd, 0xd65f03c0};
// Frameless, like a small V8 builtin: 1: ldr w1, [x0]; cbz w1, 1b; ret
const uint32_t kFramelessSpin[] = {0xb9400001, 0x34ffffe1, 0xd65f03c0};
constexpr size_t kFramelessOffset = 128;  // of kFramelessSpin in the page
#endif
constexpr size_t kSpinOffset = 64;  // of kSpinUntilSet in the page

unsigned char* g_jit;
Reference g_jit_reference;

using JitCall = long (*)(long (*)(long), long);

extern "C" __attribute__((noinline)) long gmr_test_jit_callee(long fd) {
  g_jit_reference.Take();
  sem_post(&g_ready);
  char byte;
  return read(static_cast<int>(fd), &byte, 1) + 1;
}

extern "C" __attribute__((noinline)) long gmr_test_jit_caller(long fd) {
  return reinterpret_cast<JitCall>(g_jit)(gmr_test_jit_callee, fd) + 1;
}

void* JitThread(void* arg) {
  RecordStackBounds();
  g_tid = static_cast<pid_t>(syscall(SYS_gettid));
  g_sink = gmr_test_jit_caller(reinterpret_cast<intptr_t>(arg));
  return nullptr;
}

extern "C" __attribute__((noinline)) long gmr_test_jit_spin_caller() {
  sem_post(&g_ready);
  return reinterpret_cast<long (*)(int*)>(g_jit + kSpinOffset)(&g_stop) + 1;
}

void* JitSpinThread(void*) {
  RecordStackBounds();
  g_sink = gmr_test_jit_spin_caller();
  return nullptr;
}

#if defined(__aarch64__)
extern "C" __attribute__((noinline)) long gmr_test_frameless_caller() {
  sem_post(&g_ready);
  return reinterpret_cast<long (*)(int*)>(g_jit + kFramelessOffset)(&g_stop) + 1;
}

void* FramelessSpinThread(void*) {
  RecordStackBounds();
  g_sink = gmr_test_frameless_caller();
  return nullptr;
}
#endif

// Runs `spin` on a thread of its own until it has spun a while, samples and
// unwinds it there, then lets it return (g_stop).
Frames SampleSpinning(void* (*spin)(void*)) {
  __atomic_store_n(&g_stop, 0, __ATOMIC_RELAXED);
  pthread_t thread;
  pthread_create(&thread, nullptr, spin, nullptr);
  sem_wait(&g_ready);
  usleep(10000);
  Frames frames = UnwindSnapshot(FromRsp(Sample(thread)));
  __atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
  pthread_join(thread, nullptr);
  return frames;
}

bool InJit(uintptr_t pc) {
  return pc >= reinterpret_cast<uintptr_t>(g_jit) && pc < reinterpret_cast<uintptr_t>(g_jit) + 4096;
}

void TestJitFrames() {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  g_jit = static_cast<unsigned char*>(page);
  memcpy(g_jit, kTrampoline, sizeof kTrampoline);
  memcpy(g_jit + kSpinOffset, kSpinUntilSet, sizeof kSpinUntilSet);
#if defined(__aarch64__)
  memcpy(g_jit + kFramelessOffset, kFramelessSpin, sizeof kFramelessSpin);
#endif
  __builtin___clear_cache(reinterpret_cast<char*>(g_jit), reinterpret_cast<char*>(g_jit) + 4096);
  mprotect(page, 4096, PROT_READ | PROT_EXEC);

  Frames frames = SampleBlocked(JitThread);
  std::printf("  blocked below a frame-pointer frame without CFI:\n");
  Print(frames);
  const size_t callee = IndexOf(frames, "gmr_test_jit_callee");
  Check(callee <= 2 && callee + 2 < frames.n && InJit(frames.f[callee + 1].pc) &&
            Named(frames, callee + 2, "gmr_test_jit_caller") &&
            frames.f[callee + 2].method == gmr::UnwindMethod::kFramePointer &&
            AllCfi(frames, callee + 3) && InLibc(frames, frames.n - 1),
        "jit: through the trampoline by frame pointer, then CFI again down to libc");
  // libgcc's unwinder stops at the trampoline, which has no CFI.
  const int above = g_jit_reference.Taker() + 1;
  Check(above < g_jit_reference.n && frames.f[callee + 1].pc == g_jit_reference.at(above),
        "jit: agrees with backtrace() as far as backtrace() gets");

  frames = SampleSpinning(JitSpinThread);
  std::printf("  spinning in frame-pointer code without CFI:\n");
  Print(frames);
  Check(InJit(frames.f[0].pc) && Named(frames, 1, "gmr_test_jit_spin_caller") &&
            frames.f[1].method == gmr::UnwindMethod::kFramePointer && AllCfi(frames, 2) &&
            InLibc(frames, frames.n - 1),
        "jit: first frame without CFI, by frame pointer");
#if defined(__aarch64__)
  // Its frame record holds another return address: the caller is in x30.
  frames = SampleSpinning(FramelessSpinThread);
  std::printf("  spinning in frameless code without CFI:\n");
  Print(frames);
  Check(InJit(frames.f[0].pc) && Named(frames, 1, "gmr_test_frameless_caller") &&
            frames.f[1].method == gmr::UnwindMethod::kLinkRegister && AllCfi(frames, 2) &&
            InLibc(frames, frames.n - 1),
        "jit: a frameless first frame without CFI, its caller from x30, then CFI");
#endif
  munmap(page, 4096);
}

#if defined(__x86_64__)
// ---------------------------------------------------------------------------
// Synthetic states: the registers and stack a function at pc would start
// with had the caller of gmr_test_capture_at called it instead.

// void gmr_test_capture_at(uintptr_t pc, gmr::Registers* regs, unsigned char* buf, size_t len)
// Records pc and the callee-saved registers, rsp pointing at our return
// address, and copies len bytes of stack from there.
asm(R"(
  .text
  .globl gmr_test_capture_at
  .type gmr_test_capture_at, @function
gmr_test_capture_at:
  .cfi_startproc
  mov %rdi, 0(%rsi)
  mov %rsp, 8(%rsi)
  mov %rbp, 16(%rsi)
  mov %rbx, 24(%rsi)
  mov %r12, 32(%rsi)
  mov %r13, 40(%rsi)
  mov %r14, 48(%rsi)
  mov %r15, 56(%rsi)
  mov %rdx, %rdi
  mov %rsp, %rsi
  rep movsb
  ret
  .cfi_endproc
  .size gmr_test_capture_at, .-gmr_test_capture_at
)");
extern "C" void gmr_test_capture_at(uintptr_t pc, gmr::Registers* regs, unsigned char* buf,
                                    size_t len);
static_assert(offsetof(gmr::Registers, pc) == 0 && offsetof(gmr::Registers, sp) == 8 &&
                  offsetof(gmr::Registers, r15) == 56,
              "gmr_test_capture_at's layout");

struct Synthetic {
  Snapshot snapshot;
  Reference reference;  // taken in the function that called gmr_test_capture_at
};

extern "C" __attribute__((noinline)) void gmr_test_synthesize(uintptr_t pc, Synthetic* out) {
  out->reference.Take();
  char here;
  const size_t len = std::min<size_t>(kMaxCopy, t_stack_hi - reinterpret_cast<uintptr_t>(&here));
  out->snapshot.stack.resize(len);
  gmr_test_capture_at(pc, &out->snapshot.regs, out->snapshot.stack.data(), len);
  out->snapshot.base = out->snapshot.regs.sp;
  g_sink = g_sink + 1;
}

// Pushes a word, as the code at pc would have done before we look.
void Push(Snapshot* s, uintptr_t word) {
  s->stack.insert(s->stack.begin(), reinterpret_cast<unsigned char*>(&word),
                  reinterpret_cast<unsigned char*>(&word) + 8);
  s->base -= 8;
  s->regs.sp -= 8;
}

// Unwinds a state synthesized at pc, with `pushed` words pushed since entry:
// the next frame must be gmr_test_synthesize by CFI, and the rest must
// follow its backtrace().
void CheckSynthetic(const char* what, uintptr_t pc, uintptr_t pc_offset, int pushed) {
  Synthetic syn;
  gmr_test_synthesize(pc, &syn);
  uintptr_t return_address;
  memcpy(&return_address, syn.snapshot.stack.data(), 8);
  syn.snapshot.regs.pc += pc_offset;
  for (int i = 0; i < pushed; ++i) Push(&syn.snapshot, 0x1234 + i);
  const Frames frames = UnwindSnapshot(syn.snapshot);
  const bool ok = frames.n > 2 && frames.f[1].pc == return_address &&
                  Named(frames, 1, "gmr_test_synthesize") &&
                  FollowsReference(frames, 1, syn.reference) &&
                  AllCfi(frames, 1);
  if (!ok) Print(frames);
  Check(ok, std::string("synthetic: ") + what);
}

// The test binary's .plt, from its section headers.
uintptr_t FindPlt(bool* has_plt_sec) {
  uintptr_t bias = 0;
  dl_iterate_phdr([](dl_phdr_info* info, size_t, void* data) {
    *static_cast<uintptr_t*>(data) = info->dlpi_addr;  // the first object is the program
    return 1;
  }, &bias);
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  Elf64_Ehdr eh;
  std::vector<Elf64_Shdr> sections;
  uintptr_t plt = 0;
  *has_plt_sec = false;
  if (pread(fd, &eh, sizeof eh, 0) == sizeof eh && eh.e_shstrndx < eh.e_shnum) {
    sections.resize(eh.e_shnum);
    const ssize_t size = static_cast<ssize_t>(eh.e_shnum * sizeof(Elf64_Shdr));
    if (pread(fd, sections.data(), size, eh.e_shoff) == size) {
      const Elf64_Shdr& names = sections[eh.e_shstrndx];
      std::vector<char> strings(names.sh_size + 1);
      if (pread(fd, strings.data(), names.sh_size, names.sh_offset) ==
          static_cast<ssize_t>(names.sh_size)) {
        for (const Elf64_Shdr& s : sections) {
          if (s.sh_name >= names.sh_size) continue;
          const std::string name = &strings[s.sh_name];
          if (name == ".plt" && s.sh_size >= 32) plt = bias + s.sh_addr;
          if (name == ".plt.sec") *has_plt_sec = true;
        }
      }
    }
  }
  close(fd);
  return plt;
}

// A copy of the library at path whose .eh_frame_hdr says it has no search
// table, so that the unwinder has to scan .eh_frame; "" on failure.
std::string CopyWithoutSearchTable(const std::string& path) {
  FILE* in = std::fopen(path.c_str(), "rb");
  if (in == nullptr) return "";
  std::vector<unsigned char> data;
  unsigned char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, in)) > 0;) {
    data.insert(data.end(), buf, buf + n);
  }
  std::fclose(in);
  Elf64_Ehdr eh;
  if (data.size() < sizeof eh) return "";
  memcpy(&eh, data.data(), sizeof eh);
  bool patched = false;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    const size_t at = eh.e_phoff + i * sizeof ph;
    if (at + sizeof ph > data.size()) return "";
    memcpy(&ph, &data[at], sizeof ph);
    if (ph.p_type == PT_GNU_EH_FRAME && ph.p_offset + 4 <= data.size()) {
      data[ph.p_offset + 3] = 0xff;  // table_enc: DW_EH_PE_omit
      patched = true;
    }
  }
  char name[] = "/tmp/gmr_unwind_test_XXXXXX";
  const int fd = mkstemp(name);
  if (fd < 0) return "";
  const bool written = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  close(fd);
  if (!patched || !written) {
    unlink(name);
    return "";
  }
  return name;
}

void TestSynthetic() {
  RecordStackBounds();
  bool has_plt_sec;
  const uintptr_t plt = FindPlt(&has_plt_sec);
  if (plt == 0 || has_plt_sec) {
    std::printf("SKIP PLT tests: no classic lazy .plt\n");
  } else {
    // Entry n jumps through the GOT, or pushes n (at +6) and jumps to
    // entry 0 (at +11), which pushes once more (at +6) and jumps to the resolver.
    CheckSynthetic("first instruction of a PLT entry", plt + 16, 0, 0);
    CheckSynthetic("PLT entry after pushing its index", plt + 16, 11, 1);
    CheckSynthetic("PLT entry 0 on entry", plt, 0, 1);
    CheckSynthetic("PLT entry 0 after its push", plt, 6, 2);
  }
  CheckSynthetic("entry of a function in the test", reinterpret_cast<uintptr_t>(gmr_test_leaf), 0,
                 0);
  CheckSynthetic("entry of getpid in libc",
                 reinterpret_cast<uintptr_t>(dlsym(RTLD_DEFAULT, "getpid")), 0, 0);

  // A library loaded after the unwinder cached the list of objects.
  void* lib = dlopen("libuv.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::printf("SKIP dlopen test: %s\n", dlerror());
    return;
  }
  const uintptr_t fn = reinterpret_cast<uintptr_t>(dlsym(lib, "uv_version"));
  CheckSynthetic("entry of a function in a library dlopen'ed since", fn, 0, 0);
  Dl_info info;
  const std::string path = dladdr(reinterpret_cast<void*>(fn), &info) ? info.dli_fname : "";
  dlclose(lib);

  const std::string copy = CopyWithoutSearchTable(path);
  void* scanned = copy.empty() ? nullptr : dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
  unlink(copy.c_str());
  if (scanned == nullptr) {
    Check(false, "synthetic: load a copy of " + path + " without .eh_frame_hdr search table");
  } else {
    CheckSynthetic("entry of a function in a library without .eh_frame_hdr search table",
                   reinterpret_cast<uintptr_t>(dlsym(scanned, "uv_version")), 0, 0);
    dlclose(scanned);
  }
  Synthetic syn;
  gmr_test_synthesize(fn, &syn);
  const Frames frames = UnwindSnapshot(syn.snapshot);
  Check(frames.n >= 1 && frames.f[0].pc == fn, "synthetic: pc in a library dlclose'd since");
}

#endif  // synthetic states

// ---------------------------------------------------------------------------
// Garbage.

// Executable segments of all loaded objects, to aim garbage pcs at real code.
std::vector<std::pair<uintptr_t, uintptr_t>> CodeRanges() {
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  dl_iterate_phdr([](dl_phdr_info* info, size_t, void* data) {
    auto* v = static_cast<std::vector<std::pair<uintptr_t, uintptr_t>>*>(data);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[i];
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
        v->emplace_back(info->dlpi_addr + ph.p_vaddr, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
      }
    }
    return 0;
  }, &out);
  return out;
}

void TestGarbage(int iterations) {
  std::mt19937_64 rng(42);
  const auto code = CodeRanges();
  auto code_pc = [&] {
    const auto& r = code[rng() % code.size()];
    return r.first + rng() % (r.second - r.first);
  };
  std::vector<unsigned char> stack(16384);
  const uintptr_t base = 0x7ffd00000000 + (rng() % 4096) * 8;
  // Words that look like what stacks hold: pointers into the copy, into
  // code, small numbers, anything.
  auto word = [&]() -> uintptr_t {
    switch (rng() % 4) {
      case 0: return base + rng() % (stack.size() + 64) - 32;
      case 1: return code_pc();
      case 2: return rng() % 256;
      default: return rng();
    }
  };
  size_t total = 0;
  Frames frames;
  for (int i = 0; i < iterations; ++i) {
    for (size_t j = 0; j + 8 <= stack.size(); j += 8) {
      const uintptr_t w = word();
      memcpy(&stack[j], &w, 8);
    }
    gmr::Registers regs;
    regs.pc = rng() % 8 ? code_pc() : word();
    regs.sp = word();
    regs.fp = word();
#if defined(__x86_64__)
    regs.rbx = word();
    regs.r12 = word();
#else
    regs.lr = rng() % 2 ? code_pc() : word();
    regs.x19_x28[0] = word();
    regs.x19_x28[1] = word();
#endif
    gmr::StackCopy copy;
    copy.base = base + (rng() % 8 == 0 ? rng() % 8 : 0);  // sometimes misaligned
    copy.size = rng() % 16 == 0 ? rng() % 16 : stack.size() - rng() % 8;
    copy.data = stack.data();
    const size_t max = 1 + rng() % kMaxFrames;
    frames.n = gmr::Unwind(regs, copy, frames.f, max);
    if (frames.n > max || frames.n == 0) {
      Check(false, "garbage: frame count within bounds");
      return;
    }
    total += frames.n;
  }
  Check(true, "garbage: " + std::to_string(iterations) + " random stacks, " +
                  std::to_string(total) + " frames, no crash");
}

// Real stacks with random words overwritten.
void TestCorrupted(int iterations) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pthread_t thread;
  pthread_create(&thread, nullptr, gmr_test_blocked_thread,
                 reinterpret_cast<void*>(static_cast<intptr_t>(fds[0])));
  sem_wait(&g_ready);
  WaitUntilBlocked(g_tid);
  const Snapshot good = FromRsp(Sample(thread));
  if (write(fds[1], "x", 1) != 1) std::abort();
  pthread_join(thread, nullptr);
  close(fds[0]);
  close(fds[1]);

  std::mt19937_64 rng(7);
  size_t total = 0;
  const size_t words = std::min<size_t>(good.stack.size(), 2048) / 8;
  for (int i = 0; i < iterations; ++i) {
    Snapshot s = good;
    for (int k = 0; k < 4; ++k) {
      const uintptr_t w = rng() % 2 ? rng() : s.base + rng() % 4096;
      memcpy(&s.stack[(rng() % words) * 8], &w, 8);
    }
    total += UnwindSnapshot(s).n;
  }
  Check(true, "corrupted: " + std::to_string(iterations) + " damaged real stacks, " +
                  std::to_string(total) + " frames, no crash");

  Frames few;
  Check(gmr::Unwind(good.regs, good.Copy(), few.f, 2) == 2 &&
            gmr::Unwind(good.regs, good.Copy(), few.f, 0) == 0,
        "limits: max_frames is respected");

  const int kRuns = 10000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) total += UnwindSnapshot(good).n;
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  std::printf("INFO unwinding the blocked thread (%zu frames): %.2f us per walk\n",
              UnwindSnapshot(good).n, us / kRuns);
}

int main(int argc, char** argv) {
  const int garbage = argc > 1 ? std::atoi(argv[1]) : 20000;
  sem_init(&g_sampled, 0, 0);
  sem_init(&g_ready, 0, 0);
  struct sigaction sa = {};
  sa.sa_sigaction = OnSample;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  struct sigaction park = {};
  park.sa_sigaction = OnPark;
  park.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&park.sa_mask);
  sigaction(SIGUSR2, &park, nullptr);
  sigaction(SIGILL, &park, nullptr);

  TestBlockedChain();
#if defined(__x86_64__)
  TestSignalFrame();
  TestSignalAtFunctionEntry();
#endif
  TestLeaf();
  TestEverywhere();
#if defined(__x86_64__)
  TestEveryInstruction();
#endif
  TestJitFrames();
#if defined(__x86_64__)
  TestSynthetic();
#endif
  TestGarbage(garbage);
  TestCorrupted(garbage / 4);
  std::printf("%s\n", failures == 0 ? "PASS: all tests" : "FAIL: some tests failed");
  return failures == 0 ? 0 : 1;
}
