#include "thread_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <v8.h>

#include "../codemap/code_map.h"
#include "../unwind/unwind.h"
#include "../util/proc.h"
#include "../util/safe_read.h"
#include "../util/test_hooks.h"
#include "blocked_thread.h"
#include "own_isolate.h"

namespace gmr {
namespace {

constexpr size_t kMaxJsFrames = 64;
constexpr size_t kMaxMappings = 8192;
constexpr uint64_t kHoldTimeoutNs = 20 * 1000 * 1000;   // first-contact hold, for the watchdog to begin
// How far above a capture handler's context the report handler's may lie
// when the capture signal came inside the report handler (the same stack).
constexpr uintptr_t kNestedContextBytes = 256 * 1024;
// A thread still runnable at the deadline waits for a CPU (a loaded machine,
// more runnable threads than cores): it answers once it runs, and gets this
// much longer.
constexpr uint64_t kRunnableGraceNs = 400 * 1000 * 1000;

// The slot table and the stack copies are allocated once, when the handler
// is installed, and never freed nor moved: a capture signal may reach its
// thread long after its round ended (the thread was descheduled, stopped by
// a tracer, the signal queued), and its handler must find valid memory.
// Threads beyond kMaxSlots in one round are read from /proc when blocked.
constexpr size_t kMaxSlots = 1024;
// Each slot's copy: the most any capture asks for (SnapshotOptions).
constexpr size_t kSlotStackBytes = 128 * 1024;

enum SlotState : int { kFree = 0, kArmed = 1, kBusy = 2, kDone = 3 };

// A slot's tid, round and state in one word, so that a handler claims a slot
// only if it is armed for its own thread in the round it read (one CAS): a
// slot disarmed and re-armed for another thread or round in between fails
// the CAS. Only the claiming handler moves a slot out of kBusy, and the
// watchdog never re-arms a kBusy slot.
constexpr uint64_t Word(int tid, uint32_t round, int state) {
  return (uint64_t(uint32_t(tid)) << 32) | (uint64_t(round & 0xffffff) << 8) | uint64_t(state & 0xff);
}
constexpr int WordTid(uint64_t w) { return int(uint32_t(w >> 32)); }
constexpr int WordState(uint64_t w) { return int(w & 0xff); }
constexpr uint64_t WithState(uint64_t w, int state) { return (w & ~uint64_t(0xff)) | uint64_t(state); }

// A thread met for the first time is held in its handler while the watchdog
// posts an interrupt to its isolate: its isolate cannot go away meanwhile.
// It waits kHoldTimeoutNs at most for the watchdog to begin: it gives up
// with kHeld -> kNotHeld, the watchdog begins with kHeld -> kInUse, so an
// isolate whose thread went on (to dispose of it, perhaps) is not touched.
// Once begun, the thread waits until the watchdog is done (kNotHeld),
// however long: a thread that went on then could dispose of its isolate
// under the watchdog's RequestInterrupt (seen: a watchdog descheduled 40 ms
// on a loaded machine, a worker gone meanwhile, malloc's heap corrupted).
// Waiting without a limit is safe because only a thread that holds none of
// the locks the watchdog takes meanwhile is held (StoppedWithoutLocks).
enum Hold : int { kNotHeld = 0, kHeld = 1, kInUse = 2 };

// One per thread being captured. Written by that thread's handler only
// between kArmed->kBusy and kBusy->kDone; read by the watchdog after kDone.
// The table is zero-filled memory: kFree, not held.
struct Slot {
  std::atomic<uint64_t> word;       // Word(tid, round, state)
  std::atomic<int> hold;            // futex word: a Hold
  std::atomic<int> held;            // 1 while a held thread is inside WaitWhileHeld (it reads the slot)
  size_t stack_limit;               // bytes this round wants copied, <= kSlotStackBytes
  uint64_t interrupted_ns;
  bool in_syscall;
  bool before_syscall;              // at the instruction: the call will be restarted
  Registers regs;
  unsigned char* stack;             // kSlotStackBytes of its own, set once
  size_t stack_size;
  v8::Isolate* isolate;
  int vm_state;
  size_t js_frame_count;
  void* js_frames[kMaxJsFrames];
  void* external_callback;
  uint64_t code_events;
};

struct Readable {  // a readable range of memory, adjacent mappings merged
  uintptr_t start, end;
};

// Set once by InstallCaptureHandler, before the handler can run; never
// freed. g_slots_used only grows: the handler scans that many slots.
Slot* g_slots = nullptr;
std::atomic<size_t> g_slots_used{0};
uint32_t g_round = 0;                // the watchdog's, under CaptureAllThreads' lock
// Readable mappings, sorted, from /proc/self/maps. Rewritten by each round: a
// late handler may read a stale or half-written table, which only misplaces
// where its copy stops, and the copy is bounded and fault-safe.
Readable* g_mappings = nullptr;
std::atomic<size_t> g_mapping_count{0};
sem_t g_done;                       // posted by each handler when its slot is kDone
int g_signal = -1;
pid_t g_pid = 0;
IsolateKnownFn g_isolate_known = nullptr;
// Threads running the report signal's handler, with the context it
// interrupted (EnterReportHandler). A few at once at most (a signal per
// thread that does not block it); one that finds no free entry is captured
// as it is.
struct InReportHandler {
  std::atomic<int> tid;
  std::atomic<const ucontext_t*> context;
};
constexpr size_t kReportHandlerEntries = 8;
InReportHandler g_in_report_handler[kReportHandlerEntries];

// Async-signal-safe: atomics only. The context the report signal's handler
// of thread `tid` interrupted, or nullptr.
const ucontext_t* ReportHandlerContext(int tid) {
  for (auto& e : g_in_report_handler)
    if (e.tid.load(std::memory_order_acquire) == tid) return e.context.load(std::memory_order_acquire);
  return nullptr;
}

// Async-signal-safe: clock_gettime is on POSIX's list.
uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

// Async-signal-safe: binary search in the preallocated table.
const Readable* FindMapping(uintptr_t addr) {
  size_t lo = 0, hi = g_mapping_count.load(std::memory_order_acquire);
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (addr < g_mappings[mid].start) hi = mid;
    else if (addr >= g_mappings[mid].end) lo = mid + 1;
    else return &g_mappings[mid];
  }
  return nullptr;
}

// Test builds only: every other capture handler of the process is made
// late by `ms` (test_hooks.h), and counted.
std::atomic<uint64_t> g_test_handlers{0};
std::atomic<uint64_t> g_test_late_handlers{0};
std::atomic<uint64_t> g_test_first_contacts{0};  // holds the watchdog began
std::atomic<long> g_test_refusals{0};          // holds refused (first_contact_refusals)
void TestDelayEveryOther(const char* hook) {
  long ms = TestHook(hook);
  if (ms <= 0 || g_test_handlers.fetch_add(1) % 2 == 0) return;
  g_test_late_handlers.fetch_add(1);
  TestSleepMs(ms);
}

// Async-signal-safe: atomics over the table allocated once. The slot armed
// for this thread, now kBusy and ours, or nullptr.
Slot* ClaimSlot(int tid) {
  size_t n = g_slots_used.load(std::memory_order_acquire);
  for (size_t i = 0; g_slots && i < n; i++) {
    uint64_t w = g_slots[i].word.load(std::memory_order_acquire);
    if (WordTid(w) != tid || WordState(w) != kArmed) continue;
    // The window a late handler falls into: the slot may be disarmed and
    // re-armed meanwhile, and the CAS below must then fail.
    TestDelayEveryOther("capture_claim_delay_ms");
    if (g_slots[i].word.compare_exchange_strong(w, WithState(w, kBusy), std::memory_order_acq_rel)) return &g_slots[i];
  }
  return nullptr;
}

// The system call instruction: x86-64's `syscall` (0f 05), AArch64's
// `svc #0` (d4000001, little-endian like its code).
#if defined(__aarch64__)
using SyscallInsn = uint32_t;
constexpr SyscallInsn kSyscallInsn = 0xd4000001;
#else
using SyscallInsn = uint16_t;
constexpr SyscallInsn kSyscallInsn = 0x050f;
#endif

// Async-signal-safe: the code at the interrupted pc, read with SafeRead
// (one process_vm_readv or pread: code unmapped meanwhile is a failed read). A
// thread signalled in a system call stands at its system call instruction:
// before it when the call will be restarted (SA_RESTART; the kernel moved
// the pc back onto it), after it when it returns EINTR.
enum SyscallSpot : int { kNotInSyscall = 0, kBeforeSyscall = 1, kAfterSyscall = 2 };
SyscallSpot InSyscall(uintptr_t pc) {
  if (pc < sizeof(SyscallInsn)) return kNotInSyscall;
  auto at = [](uintptr_t p) {
    SyscallInsn v;
    return SafeRead(p, &v, sizeof v) && v == kSyscallInsn;
  };
  return at(pc) ? kBeforeSyscall : at(pc - sizeof(SyscallInsn)) ? kAfterSyscall : kNotInSyscall;
}

// Async-signal-safe: a copy within one readable mapping, clamped to its
// end, so a stack pointer near the top of its stack never reads past the
// mapping, and through CopyMapped (safe_read.h), so a mapping that shrank
// since cannot fault: a worker's stack unmapped as the worker exited, next
// to another's, the two read as one mapping at the capture's start.
//
// A stack in no mapping the table knows (mapped after the table was read,
// or left out of /proc/self/maps, as qemu-user 7.2 leaves out guest
// mappings that share a host mapping with memory of its own) is copied up
// to the limit all the same: CopyMapped stops at the first unmapped page.
void CopyStack(Slot* slot) {
  slot->stack_size = 0;
  // Bounded by the slot's own buffer, whatever the round asked.
  size_t n = std::min(slot->stack_limit, kSlotStackBytes);
  if (const Readable* m = FindMapping(slot->regs.sp)) n = std::min<size_t>(n, m->end - slot->regs.sp);
  slot->stack_size = CopyMapped(slot->stack, slot->regs.sp, n);
}

// Async-signal-safe: V8 documents GetStackSample for use from a signal
// handler on the sampled thread (its CPU profiler does the same); it neither
// allocates nor locks. IsolateRunningHere is said so in own_isolate.h;
// CodeMapEventCount is atomics over a fixed table (code_map.h).
void SampleV8(Slot* slot) {
  // Only the isolate this thread runs: another thread's sampled from here
  // would be read from that thread's state while it runs. One being
  // disposed of is neither sampled nor held nor sent an interrupt.
  slot->isolate = IsolateRunningHere();
  slot->vm_state = -1;
  slot->js_frame_count = 0;
  slot->external_callback = nullptr;
  slot->code_events = 0;
  if (!slot->isolate) return;
  v8::RegisterState state;
  state.pc = reinterpret_cast<void*>(slot->regs.pc);
  state.sp = reinterpret_cast<void*>(slot->regs.sp);
  state.fp = reinterpret_cast<void*>(slot->regs.fp);
#if defined(__aarch64__)
  state.lr = reinterpret_cast<void*>(slot->regs.lr);  // V8's arm64 sampler reads it for a frameless top frame
#endif
  v8::SampleInfo info{};
  slot->isolate->GetStackSample(state, slot->js_frames, kMaxJsFrames, &info);
  slot->vm_state = info.vm_state;
  slot->js_frame_count = info.frames_count;
  slot->external_callback = info.external_callback_entry;
  // Lock-free: the map the sample's pcs will be resolved against, as of now.
  slot->code_events = CodeMapEventCount(slot->isolate);
}

// Async-signal-safe: a read of the context. JavaScript threads run with no
// signal blocked; code that blocks one may be a signal handler (which
// blocks at least its own signal), and what that handler interrupted may
// hold any lock, whatever the registers of the handler say.
bool BlocksNoSignal(const ucontext_t* interrupted) {
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != g_signal && sigismember(&interrupted->uc_sigmask, sig) == 1) return false;
  return true;
}

// Async-signal-safe: reads of the saved registers, of where InSyscall
// found the thread, and of the isolate's code ranges (plain fields, as
// GetStackSample reads). Whether the thread holds none of the locks the
// watchdog takes while it holds the thread (JsStackRound::Post: malloc's;
// RequestInterrupt: the isolate's interrupt lock, V8's Atomics.wait lock,
// malloc's). So the watchdog never waits for the thread it holds.
bool StoppedWithoutLocks(const Slot* slot) {
  const Registers& r = slot->regs;
  // Running generated code, JIT or builtins: nothing holds one of those
  // locks across a call into JavaScript.
  void* code = nullptr;
  size_t code_size = 0;
  slot->isolate->GetCodeRange(&code, &code_size);
  if (r.pc - reinterpret_cast<uintptr_t>(code) < code_size) return true;
  const void* builtins = nullptr;
  size_t builtins_size = 0;
  slot->isolate->GetEmbeddedCodeRange(&builtins, &builtins_size);
  if (r.pc - reinterpret_cast<uintptr_t>(builtins) < builtins_size) return true;
  if (!slot->in_syscall) return false;
#if defined(__x86_64__) || defined(__aarch64__)
  // Asleep in the kernel in a wait that none of those locks is held across.
  // Past the system call instruction, the call returned EINTR (epoll_wait,
  // select, sigsuspend: waits the kernel never restarts).
  if (r.sys_ret == static_cast<uintptr_t>(-EINTR)) return true;
  if (!slot->before_syscall) return false;
  // At it, to be restarted: sys_nr is the call's number (rax, x8). Not a
  // plain FUTEX_WAIT (a mutex's waiter may hold another lock) nor mmap and
  // the rest malloc calls with its lock held; FUTEX_WAIT_BITSET is glibc's
  // condition variable and semaphore wait (Atomics.wait, libuv's threadpool).
  // AArch64 has no open nor epoll_wait: glibc calls openat and epoll_pwait.
  switch (r.sys_nr) {
    case SYS_futex:
      return (r.arg1 & ~uintptr_t(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)) == FUTEX_WAIT_BITSET;
    case SYS_restart_syscall:  // a timed wait resumed: nanosleep, poll, futex
    case SYS_read: case SYS_readv: case SYS_pread64: case SYS_write: case SYS_writev:
    case SYS_recvfrom: case SYS_recvmsg: case SYS_sendto: case SYS_sendmsg:
    case SYS_accept: case SYS_accept4: case SYS_connect: case SYS_wait4: case SYS_waitid:
    case SYS_openat: case SYS_flock: case SYS_epoll_pwait:
#if defined(__x86_64__)
    case SYS_open: case SYS_epoll_wait:
#endif
      return true;
    default:
      return false;
  }
#else
  return false;
#endif
}

// Async-signal-safe: raw futex waits, clock_gettime and atomics; no libc
// locking.
void WaitWhileHeld(Slot* slot) {
  uint64_t start = NowNs();
  for (;;) {
    int hold = slot->hold.load(std::memory_order_acquire);
    if (hold == kNotHeld) return;
    if (hold == kInUse) {  // begun: until done (see Hold)
      syscall(SYS_futex, &slot->hold, FUTEX_WAIT_PRIVATE, hold, nullptr, nullptr, 0);
      continue;
    }
    uint64_t waited = NowNs() - start;
    if (waited >= kHoldTimeoutNs) {
      int expected = kHeld;
      if (slot->hold.compare_exchange_strong(expected, kNotHeld, std::memory_order_acq_rel)) return;
      continue;  // the watchdog began meanwhile
    }
    timespec timeout{0, static_cast<long>(kHoldTimeoutNs - waited)};
    syscall(SYS_futex, &slot->hold, FUTEX_WAIT_PRIVATE, hold, &timeout, nullptr, 0);
  }
}

// The capture signal's handler. Everything it calls is async-signal-safe,
// each says so where it is defined: syscalls (gettid, clock_gettime,
// futex), atomics, memcpy of two bytes and a plain copy of the stack, a
// read of the code at the pc (InSyscall), sem_post (POSIX lists it),
// V8's signal-safe sampler, the code map's lock-free event count and the
// lock-free IsolateKnown (isolates/registry.cc). It allocates nothing and takes no
// lock; it saves errno.
void OnCaptureSignal(int, siginfo_t* info, void* context) {
  int saved_errno = errno;
  // Only our own tgkill: another sender of this signal is not ours to answer.
  if (info->si_code == SI_TKILL && info->si_pid == g_pid) {
    int tid = static_cast<int>(syscall(SYS_gettid));
    Slot* slot = ClaimSlot(tid);
    if (slot) {
      uint64_t start = NowNs();
      // A handler that outlives its round: its slot stays kBusy, not reused.
      TestDelayEveryOther("capture_copy_delay_ms");
      // Inside the report signal's handler: what it interrupted is what the
      // thread is doing (the handler's frames sit below that stack pointer).
      const ucontext_t* outer = ReportHandlerContext(tid);
      // Only a context on this stack, above this handler's own: a handler
      // chained to that left by siglongjmp leaves its entry behind.
      auto here = reinterpret_cast<uintptr_t>(context);
      auto there = reinterpret_cast<uintptr_t>(outer);
      if (outer && !(there > here && there - here < kNestedContextBytes)) outer = nullptr;
      const ucontext_t* interrupted = outer ? outer : static_cast<const ucontext_t*>(context);
      slot->regs = RegistersFrom(interrupted);
      SyscallSpot spot = InSyscall(slot->regs.pc);
      slot->in_syscall = spot != kNotInSyscall;
      slot->before_syscall = spot == kBeforeSyscall;
      CopyStack(slot);
      SampleV8(slot);
      bool hold = slot->isolate && g_isolate_known && !g_isolate_known(slot->isolate) &&
                  BlocksNoSignal(interrupted) && StoppedWithoutLocks(slot);
      // Test hook: the first N holds refused, as for a thread met in V8's
      // compiler. A lock-free atomic: signal-safe.
      if (kTestHooks && hold && g_test_refusals.fetch_add(1, std::memory_order_relaxed) < TestHook("first_contact_refusals"))
        hold = false;
      slot->hold.store(hold ? kHeld : kNotHeld, std::memory_order_relaxed);
      slot->held.store(hold ? 1 : 0, std::memory_order_relaxed);
      slot->interrupted_ns = NowNs() - start;
      slot->word.store(WithState(slot->word.load(std::memory_order_relaxed), kDone), std::memory_order_release);
      sem_post(&g_done);
      if (hold) {
        WaitWhileHeld(slot);
        // The last touch of the slot: the watchdog frees it only after this.
        slot->held.store(0, std::memory_order_release);
      }
    }
  }
  errno = saved_errno;
}

void ReleaseHold(Slot* slot) {
  slot->hold.store(kNotHeld, std::memory_order_release);
  syscall(SYS_futex, &slot->hold, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// Fills the mapping table the handler clamps stack copies with.
void LoadMappings() {
  g_mapping_count.store(0, std::memory_order_release);
  size_t count = 0;
  for (const Mapping& m : ReadMappings()) {
    if (!m.readable()) continue;
    // Adjacent readable mappings (a stack split by mprotect) merge into one.
    if (count > 0 && g_mappings[count - 1].end == m.start) g_mappings[count - 1].end = m.end;
    else if (count < kMaxMappings) g_mappings[count++] = {m.start, m.end};
  }
  g_mapping_count.store(count, std::memory_order_release);
}

// Waits for the signalled slots to be kDone, holding first-contact threads
// only as long as first_contact takes. Returns when all answered or at the
// deadline.
void CollectAnswers(const std::vector<Slot*>& sent, uint64_t deadline_ns,
                    const FirstContactFn& first_contact) {
  std::vector<bool> seen(sent.size(), false);
  size_t answered = 0;
  while (answered < sent.size()) {
    uint64_t now = NowNs();
    if (now >= deadline_ns) break;
    timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t abs_ns = uint64_t(rt.tv_sec) * 1000000000u + rt.tv_nsec + (deadline_ns - now);
    timespec abs{time_t(abs_ns / 1000000000u), long(abs_ns % 1000000000u)};
    if (sem_timedwait(&g_done, &abs) != 0 && errno == ETIMEDOUT) break;
    for (size_t i = 0; i < sent.size(); i++) {
      Slot* s = sent[i];
      if (seen[i] || WordState(s->word.load(std::memory_order_acquire)) != kDone) continue;
      seen[i] = true;
      answered++;
      // Only while the thread still waits: one that gave up may be
      // disposing of its isolate by now.
      int waiting = kHeld;
      if (s->hold.compare_exchange_strong(waiting, kInUse, std::memory_order_acq_rel)) {
        // Test builds: the watchdog late at the isolate it holds.
        g_test_first_contacts.fetch_add(1, std::memory_order_relaxed);
        TestSleepMs(TestHook("first_contact_delay_ms"));
        if (first_contact) first_contact(s->isolate, WordTid(s->word.load()));
        ReleaseHold(s);
      }
    }
  }
}

// Disarms this round's slots that were never claimed (a signal still queued
// finds nothing to claim), lets held threads go, and gives a handler that
// already claimed its slot up to a second to finish, so its copy is in this
// report. One that takes longer (a stopped thread) keeps its slot kBusy:
// later rounds pass it by until it is done.
void DisarmAll(const std::vector<Slot*>& used) {
  for (Slot* s : used) {
    uint64_t w = s->word.load(std::memory_order_acquire);
    if (WordState(w) == kArmed) s->word.compare_exchange_strong(w, WithState(w, kFree), std::memory_order_acq_rel);
    if (s->hold.load()) ReleaseHold(s);
  }
  for (int tries = 0; tries < 1000; tries++) {
    bool quiet = true;
    for (Slot* s : used)
      if (WordState(s->word.load(std::memory_order_acquire)) == kBusy || s->held.load(std::memory_order_acquire))
        quiet = false;
    if (quiet) return;
    usleep(1000);
  }
}

// A slot no handler can be inside: not armed, not claimed, no thread held.
bool SlotIdle(const Slot& s) {
  int state = WordState(s.word.load(std::memory_order_acquire));
  return state != kArmed && state != kBusy && !s.held.load(std::memory_order_acquire);
}

void FillFromProc(ThreadSnapshot* t) {
  std::string base = "/proc/self/task/" + std::to_string(t->tid);
  t->name = ReadProcFile(base + "/comm");
  while (!t->name.empty() && t->name.back() == '\n') t->name.pop_back();
  ProcStat st;
  if (ReadThreadStat(t->tid, &st)) {
    t->os_state = st.state;
    t->cpu_user_us = st.utime_us;
    t->cpu_system_us = st.stime_us;
  }
}

void CopyOut(const Slot& slot, ThreadSnapshot* t) {
  t->captured = true;
  t->interrupted_ns = slot.interrupted_ns;
  t->in_syscall = slot.in_syscall;
  t->regs = slot.regs;
  t->stack.assign(slot.stack, slot.stack + slot.stack_size);
  t->v8.isolate = slot.isolate;
  t->v8.vm_state = slot.vm_state;
  t->v8.frame_count = std::min(slot.js_frame_count, kMaxJsFrames);
  for (size_t i = 0; i < t->v8.frame_count; i++)
    t->v8.frames.push_back(reinterpret_cast<uintptr_t>(slot.js_frames[i]));
  t->v8.external_callback = reinterpret_cast<uintptr_t>(slot.external_callback);
  t->v8.code_events = slot.code_events;
}

// True when the thread blocks the signal: tgkill would leave it pending.
// `running` says whether it is on a CPU (or runnable) meanwhile.
bool SignalBlocked(int tid, int sig, bool* running = nullptr) {
  std::string status = ReadProcFile("/proc/self/task/" + std::to_string(tid) + "/status");
  size_t state = status.find("State:\t");
  if (running) *running = state != std::string::npos && status.compare(state + 7, 1, "R") == 0;
  size_t at = status.find("SigBlk:");
  if (at == std::string::npos) return false;
  uint64_t mask = strtoull(status.c_str() + at + 7, nullptr, 16);
  return (mask >> (sig - 1)) & 1;
}

// libuv blocks every signal for the moment it creates a thread or forks
// (a Worker starting, a child process spawned): a thread that blocks the
// signal while it runs, or the main thread, is asked again for a few ms.
// One that blocks it for good (Node's inspector thread, asleep) is not
// signalled at all: the signal would stay queued for ever.
constexpr int kBlockedRetries = 50;
constexpr int kBlockedRetryUs = 200;

}  // namespace

// Async-signal-safe: atomics and gettid. The entry is claimed, then its
// context stored: a capture signal nested between the two finds no context
// and captures the thread as it is.
void EnterReportHandler(void* interrupted_context) {
  int tid = static_cast<int>(syscall(SYS_gettid));
  for (auto& e : g_in_report_handler) {
    int expected = 0;
    if (!e.tid.compare_exchange_strong(expected, tid)) continue;
    e.context.store(static_cast<const ucontext_t*>(interrupted_context), std::memory_order_release);
    return;
  }
}

void LeaveReportHandler() {
  int tid = static_cast<int>(syscall(SYS_gettid));
  for (auto& e : g_in_report_handler) {
    if (e.tid.load(std::memory_order_relaxed) != tid) continue;
    e.context.store(nullptr, std::memory_order_release);
    e.tid.store(0, std::memory_order_release);
    return;
  }
}

// Whether sig reaches a thread when sent: qemu-user cannot deliver the
// guest's top two real-time signals (SIGRTMIN+29, +30 under glibc) and says
// so only when one is sent (EINVAL), its sigaction succeeding. Sent to
// this thread while blocked, then taken back with sigtimedwait: no handler
// runs, nothing stays pending. Always true on a kernel of its own.
bool Deliverable(int sig) {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, sig);
  if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0) return false;
  bool ok = syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig) == 0;
  if (ok) {
    timespec none{0, 0};
    ok = sigtimedwait(&set, nullptr, &none) == sig;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

int InstallCaptureHandler(IsolateKnownFn isolate_known) {
  if (g_signal != -1) return g_signal;
  g_pid = getpid();
  g_isolate_known = isolate_known;
  sem_init(&g_done, 0, 0);
  g_mappings = new Readable[kMaxMappings];
  // Zero-filled (every slot kFree) and never freed. The copies' pages are
  // reserved, not committed: only what a capture touches is resident, and
  // is given back after each round (MADV_DONTNEED).
  void* table = mmap(nullptr, kMaxSlots * sizeof(Slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* stacks = mmap(nullptr, kMaxSlots * kSlotStackBytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (table == MAP_FAILED || stacks == MAP_FAILED) return -1;
  g_slots = static_cast<Slot*>(table);
  for (size_t i = 0; i < kMaxSlots; i++) g_slots[i].stack = static_cast<unsigned char*>(stacks) + i * kSlotStackBytes;
  // From the top of the real-time range down: the bottom ones are the
  // likeliest to be used by applications and libraries.
  for (int sig = SIGRTMAX - 1; sig >= SIGRTMIN + 4; sig--) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0) continue;
    bool taken = (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != nullptr
                                             : old.sa_handler != SIG_DFL;
    if (taken || !Deliverable(sig)) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnCaptureSignal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) != 0) continue;
    g_signal = sig;
    return sig;
  }
  return -1;
}

int CaptureSignal() { return g_signal; }

uint64_t TestLateCaptureHandlers() { return g_test_late_handlers.load(); }
uint64_t TestFirstContacts() { return g_test_first_contacts.load(); }

std::vector<ThreadSnapshot> CaptureAllThreads(const SnapshotOptions& options,
                                              const FirstContactFn& first_contact) {
  static std::mutex* one_at_a_time = new std::mutex;  // never destroyed: used at exit
  std::lock_guard<std::mutex> lock(*one_at_a_time);
  std::vector<ThreadSnapshot> threads;
  int self = static_cast<int>(syscall(SYS_gettid));
  for (int tid : ListThreads()) {
    ThreadSnapshot t;
    t.tid = tid;
    t.self = tid == self;
    t.skipped = tid == options.skip_tid || (options.only && !options.only(tid));
    threads.push_back(std::move(t));
  }
  if (g_signal == -1) {
    for (auto& t : threads) t.missing_reason = "no capture signal could be installed";
    for (auto& t : threads) FillFromProc(&t);
    return threads;
  }

  size_t n = threads.size();
  size_t stack_bytes = std::min(options.max_stack_bytes, kSlotStackBytes);
  LoadMappings();
  // One idle slot per thread to signal; none left (over kMaxSlots threads,
  // or slots still kBusy from a stopped thread) leaves a thread to /proc.
  uint32_t round = ++g_round;
  std::vector<Slot*> slot_of(n, nullptr);
  std::vector<Slot*> used;
  size_t next = 0;
  for (size_t i = 0; i < n; i++) {
    if (threads[i].self || threads[i].skipped) continue;
    while (next < kMaxSlots && !SlotIdle(g_slots[next])) next++;
    if (next == kMaxSlots) {
      threads[i].missing_reason = "more threads than the capture has slots for";
      continue;
    }
    Slot* slot = &g_slots[next++];
    slot->stack_limit = stack_bytes;
    slot->stack_size = 0;
    slot->isolate = nullptr;
    slot->hold.store(kNotHeld, std::memory_order_relaxed);
    slot->word.store(Word(threads[i].tid, round, kFree), std::memory_order_release);
    slot_of[i] = slot;
    used.push_back(slot);
  }
  if (next > g_slots_used.load(std::memory_order_relaxed)) g_slots_used.store(next, std::memory_order_release);
  while (sem_trywait(&g_done) == 0) {
  }

  std::vector<Slot*> sent;
  std::vector<size_t> again;  // blocking the signal for a moment, perhaps
  auto send = [&](size_t i) {
    ThreadSnapshot& t = threads[i];
    Slot* slot = slot_of[i];
    uint64_t armed = Word(t.tid, round, kArmed);
    slot->word.store(armed, std::memory_order_release);
    if (syscall(SYS_tgkill, g_pid, t.tid, g_signal) != 0) {
      slot->word.compare_exchange_strong(armed, Word(t.tid, round, kFree), std::memory_order_acq_rel);
      t.missing_reason = errno == ESRCH ? "the thread exited during the capture"
                                        : std::string("tgkill failed: ") + strerror(errno);
      return;
    }
    t.missing_reason.clear();
    sent.push_back(slot);
  };
  for (size_t i = 0; i < n; i++) {
    ThreadSnapshot& t = threads[i];
    if (!slot_of[i]) continue;
    bool running = false;
    if (SignalBlocked(t.tid, g_signal, &running)) {
      t.missing_reason = "the thread blocks the capture signal";
      if (running || t.tid == g_pid) again.push_back(i);
      continue;
    }
    send(i);
  }
  for (int tries = 0; tries < kBlockedRetries && !again.empty(); tries++) {
    usleep(kBlockedRetryUs);
    for (size_t k = 0; k < again.size();) {
      if (SignalBlocked(threads[again[k]].tid, g_signal)) {
        k++;
        continue;
      }
      send(again[k]);
      again.erase(again.begin() + k);
    }
  }
  CollectAnswers(sent, NowNs() + uint64_t(options.timeout_ms) * 1000000u, first_contact);
  std::vector<Slot*> runnable;
  for (Slot* s : sent) {
    uint64_t w = s->word.load(std::memory_order_acquire);
    if (WordState(w) == kDone) continue;
    ProcStat st;
    if (ReadThreadStat(WordTid(w), &st) && st.state == 'R') runnable.push_back(s);
  }
  if (!runnable.empty()) CollectAnswers(runnable, NowNs() + kRunnableGraceNs, first_contact);
  DisarmAll(used);

  for (size_t i = 0; i < n; i++) {
    ThreadSnapshot& t = threads[i];
    // Done in this round: a slot's word names its round.
    if (slot_of[i] && slot_of[i]->word.load(std::memory_order_acquire) == Word(t.tid, round, kDone)) CopyOut(*slot_of[i], &t);
    else if (!t.self && !t.skipped && t.missing_reason.empty())
      t.missing_reason = "the thread did not answer the capture signal in time";
    if (options.identify_only) continue;
    if (t.skipped) {
      FillFromProc(&t);
      continue;
    }
    // A thread that blocks the signal may still be read while it waits.
    if (!t.captured && !t.self && CaptureBlockedThread(&t, stack_bytes)) {
      t.from_proc = true;
      t.missing_reason.clear();
    }
    FillFromProc(&t);
    if (t.missing_reason.empty() && !t.captured && !t.self && t.os_state == '?')
      t.missing_reason = "the thread exited during the capture";
  }
  // The copies' pages go back to the system; a late handler writing there
  // meanwhile gets fresh zero pages, never a fault.
  for (Slot* s : used) madvise(s->stack, kSlotStackBytes, MADV_DONTNEED);
  return threads;
}

}  // namespace gmr
