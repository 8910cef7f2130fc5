#include "thread_capture.h"

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
#include "blocked_thread.h"
#include "own_isolate.h"

namespace gmr {
namespace {

constexpr size_t kMaxJsFrames = 64;
constexpr size_t kMaxMappings = 8192;
constexpr uint64_t kHoldTimeoutNs = 20 * 1000 * 1000;   // first-contact hold, for the watchdog to begin
constexpr uint64_t kInUseTimeoutNs = 20 * 1000 * 1000;  // and then for it to be done
// A thread still runnable at the deadline waits for a CPU (a loaded machine,
// more runnable threads than cores): it answers once it runs, and gets this
// much longer.
constexpr uint64_t kRunnableGraceNs = 400 * 1000 * 1000;

enum SlotState : int { kFree = 0, kArmed = 1, kBusy = 2, kDone = 3 };

// A thread met for the first time is held in its handler while the watchdog
// posts an interrupt to its isolate (its isolate cannot go away meanwhile).
// It waits kHoldTimeoutNs at most for the watchdog to begin: it gives up
// with kHeld -> kNotHeld, the watchdog begins with kHeld -> kInUse, so an
// isolate whose thread went on (to dispose of it, perhaps) is not touched.
// Once begun, the thread waits until the watchdog is done (kNotHeld), or
// kInUseTimeoutNs more: longer means the watchdog waits for a lock of V8's
// the held thread holds. Then the watchdog's RequestInterrupt completes as
// soon as the thread leaves V8's critical section, long before the thread
// could dispose of its isolate.
enum Hold : int { kNotHeld = 0, kHeld = 1, kInUse = 2 };

// One per thread being captured. Written by that thread's handler only
// between kArmed->kBusy and kBusy->kDone; read by the watchdog after kDone.
struct Slot {
  std::atomic<int> tid;
  std::atomic<int> state;
  std::atomic<int> hold;            // futex word: a Hold
  std::atomic<int> held;            // 1 while a held thread is inside WaitWhileHeld (it reads the slot)
  uint64_t interrupted_ns;
  bool in_syscall;
  Registers regs;
  unsigned char* stack;             // max_stack_bytes of capture memory
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

// Published to the handler before any signal is sent (release), read by the
// handler with acquire loads. The arrays are not freed while a handler may
// still be inside them (see ReleaseSlots).
std::atomic<Slot*> g_slots{nullptr};
std::atomic<size_t> g_slot_count{0};
size_t g_max_stack_bytes = 0;
Readable* g_mappings = nullptr;      // readable mappings, sorted, from /proc/self/maps
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

// Async-signal-safe: atomics only.
Slot* ClaimSlot(int tid) {
  Slot* slots = g_slots.load(std::memory_order_acquire);
  size_t n = g_slot_count.load(std::memory_order_acquire);
  for (size_t i = 0; slots && i < n; i++) {
    if (slots[i].tid.load(std::memory_order_relaxed) != tid) continue;
    int expected = kArmed;
    if (slots[i].state.compare_exchange_strong(expected, kBusy)) return &slots[i];
    return nullptr;
  }
  return nullptr;
}

// Async-signal-safe: two bytes of code read at the interrupted pc. A thread
// signalled in a system call stands at its `syscall` instruction (0f 05):
// before it when the call will be restarted (SA_RESTART), after it when it
// returns EINTR.
bool InSyscall(uintptr_t pc) {
  if (pc < 2 || !FindMapping(pc - 2) || !FindMapping(pc + 1)) return false;
  auto at = [](uintptr_t p) {
    uint16_t v;
    memcpy(&v, reinterpret_cast<const void*>(p), sizeof v);
    return v == 0x050f;
  };
  return at(pc) || at(pc - 2);
}

// Async-signal-safe: a copy within one readable mapping, clamped to its
// end, so a stack pointer near the top of its stack never reads past the
// mapping, and through CopyMapped (safe_read.h), so a mapping that shrank
// since cannot fault: a worker's stack unmapped as the worker exited, next
// to another's, the two read as one mapping at the capture's start.
void CopyStack(Slot* slot) {
  slot->stack_size = 0;
  const Readable* m = FindMapping(slot->regs.rsp);
  if (!m) return;
  size_t n = std::min<size_t>(g_max_stack_bytes, m->end - slot->regs.rsp);
  slot->stack_size = CopyMapped(slot->stack, slot->regs.rsp, n);
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
  state.pc = reinterpret_cast<void*>(slot->regs.rip);
  state.sp = reinterpret_cast<void*>(slot->regs.rsp);
  state.fp = reinterpret_cast<void*>(slot->regs.rbp);
  v8::SampleInfo info{};
  slot->isolate->GetStackSample(state, slot->js_frames, kMaxJsFrames, &info);
  slot->vm_state = info.vm_state;
  slot->js_frame_count = info.frames_count;
  slot->external_callback = info.external_callback_entry;
  // Lock-free: the map the sample's pcs will be resolved against, as of now.
  slot->code_events = CodeMapEventCount(slot->isolate);
}

// Async-signal-safe: raw futex waits, clock_gettime and atomics; no libc
// locking.
void WaitWhileHeld(Slot* slot) {
  uint64_t start = NowNs();
  for (;;) {
    int hold = slot->hold.load(std::memory_order_acquire);
    if (hold == kNotHeld) return;
    uint64_t waited = NowNs() - start;
    uint64_t limit = hold == kHeld ? kHoldTimeoutNs : kHoldTimeoutNs + kInUseTimeoutNs;
    if (waited >= limit) {
      // The watchdog still at the isolate this long waits for a lock of
      // V8's that this thread holds (it was signalled inside V8): it must
      // go on, or neither would.
      if (hold == kInUse) return;
      int expected = kHeld;
      if (slot->hold.compare_exchange_strong(expected, kNotHeld, std::memory_order_acq_rel)) return;
      continue;
    }
    timespec timeout{0, static_cast<long>(limit - waited)};
    syscall(SYS_futex, &slot->hold, FUTEX_WAIT_PRIVATE, hold, &timeout, nullptr, 0);
  }
}

// The capture signal's handler. Everything it calls is async-signal-safe,
// each says so where it is defined: syscalls (gettid, clock_gettime,
// futex), atomics, memcpy of two bytes and a plain copy of the stack, a
// read of the code at the pc (InSyscall), sem_post (POSIX lists it),
// V8's signal-safe sampler, the code map's lock-free event count and the
// lock-free IsolateKnown (js_stacks.cc). It allocates nothing and takes no
// lock; it saves errno.
void OnCaptureSignal(int, siginfo_t* info, void* context) {
  int saved_errno = errno;
  // Only our own tgkill: another sender of this signal is not ours to answer.
  if (info->si_code == SI_TKILL && info->si_pid == g_pid) {
    Slot* slot = ClaimSlot(static_cast<int>(syscall(SYS_gettid)));
    if (slot) {
      uint64_t start = NowNs();
      // Inside the report signal's handler: what it interrupted is what the
      // thread is doing (the handler's frames sit below that stack pointer).
      const ucontext_t* outer = ReportHandlerContext(slot->tid.load(std::memory_order_relaxed));
      slot->regs = RegistersFrom(outer ? outer : static_cast<ucontext_t*>(context));
      slot->in_syscall = InSyscall(slot->regs.rip);
      CopyStack(slot);
      SampleV8(slot);
      bool hold = slot->isolate && g_isolate_known && !g_isolate_known(slot->isolate);
      slot->hold.store(hold ? kHeld : kNotHeld, std::memory_order_relaxed);
      slot->held.store(hold ? 1 : 0, std::memory_order_relaxed);
      slot->interrupted_ns = NowNs() - start;
      slot->state.store(kDone, std::memory_order_release);
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
      if (seen[i] || s->state.load(std::memory_order_acquire) != kDone) continue;
      seen[i] = true;
      answered++;
      // Only while the thread still waits: one that gave up may be
      // disposing of its isolate by now.
      int waiting = kHeld;
      if (s->hold.compare_exchange_strong(waiting, kInUse, std::memory_order_acq_rel)) {
        if (first_contact) first_contact(s->isolate, s->tid.load());
        ReleaseHold(s);
      }
    }
  }
}

// Disarms the slots that never answered. A handler that already claimed its
// slot is let finish, and a held thread let leave (it rereads its slot once
// woken): the capture memory must outlive both.
bool DisarmAll(Slot* slots, size_t n) {
  bool all_quiet = true;
  for (size_t i = 0; i < n; i++) {
    int expected = kArmed;
    slots[i].state.compare_exchange_strong(expected, kFree);
    if (slots[i].hold.load()) ReleaseHold(&slots[i]);
  }
  for (int tries = 0; tries < 1000; tries++) {
    all_quiet = true;
    for (size_t i = 0; i < n; i++)
      if (slots[i].state.load(std::memory_order_acquire) == kBusy ||
          slots[i].held.load(std::memory_order_acquire))
        all_quiet = false;
    if (all_quiet) break;
    usleep(1000);
  }
  return all_quiet;
}

void FillFromProc(ThreadSnapshot* t) {
  std::string base = "/proc/self/task/" + std::to_string(t->tid);
  t->name = ReadProcFile(base + "/comm");
  while (!t->name.empty() && t->name.back() == '\n') t->name.pop_back();
  ProcStat st;
  if (ParseProcStat(ReadProcFile(base + "/stat"), &st)) {
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

int InstallCaptureHandler(IsolateKnownFn isolate_known) {
  if (g_signal != -1) return g_signal;
  g_pid = getpid();
  g_isolate_known = isolate_known;
  sem_init(&g_done, 0, 0);
  g_mappings = new Readable[kMaxMappings];
  // From the top of the real-time range down: the bottom ones are the
  // likeliest to be used by applications and libraries.
  for (int sig = SIGRTMAX - 1; sig >= SIGRTMIN + 4; sig--) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0) continue;
    bool taken = (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != nullptr
                                             : old.sa_handler != SIG_DFL;
    if (taken) continue;
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

std::vector<ThreadSnapshot> CaptureAllThreads(const CaptureOptions& options,
                                              const FirstContactFn& first_contact) {
  static std::mutex* one_at_a_time = new std::mutex;  // never destroyed: used at exit
  std::lock_guard<std::mutex> lock(*one_at_a_time);
  std::vector<ThreadSnapshot> threads;
  int self = static_cast<int>(syscall(SYS_gettid));
  for (int tid : ListThreads()) {
    ThreadSnapshot t;
    t.tid = tid;
    t.self = tid == self;
    t.skipped = tid == options.skip_tid;
    threads.push_back(std::move(t));
  }
  if (g_signal == -1) {
    for (auto& t : threads) t.missing_reason = "no capture signal could be installed";
    for (auto& t : threads) FillFromProc(&t);
    return threads;
  }

  size_t n = threads.size();
  size_t stack_bytes = options.max_stack_bytes;
  size_t region = n * stack_bytes;
  void* mem = mmap(nullptr, region, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  Slot* slots = new Slot[n];
  if (mem == MAP_FAILED) {
    delete[] slots;
    for (auto& t : threads) t.missing_reason = "out of memory for the capture";
    return threads;
  }
  LoadMappings();
  g_max_stack_bytes = stack_bytes;
  for (size_t i = 0; i < n; i++) {
    slots[i].tid.store(threads[i].tid, std::memory_order_relaxed);
    slots[i].state.store(kFree, std::memory_order_relaxed);
    slots[i].hold.store(0, std::memory_order_relaxed);
    slots[i].held.store(0, std::memory_order_relaxed);
    slots[i].stack = static_cast<unsigned char*>(mem) + i * stack_bytes;
    slots[i].stack_size = 0;
    slots[i].isolate = nullptr;
  }
  while (sem_trywait(&g_done) == 0) {
  }
  g_slot_count.store(n, std::memory_order_release);
  g_slots.store(slots, std::memory_order_release);

  std::vector<Slot*> sent;
  std::vector<size_t> again;  // blocking the signal for a moment, perhaps
  auto send = [&](size_t i) {
    ThreadSnapshot& t = threads[i];
    slots[i].state.store(kArmed, std::memory_order_release);
    if (syscall(SYS_tgkill, g_pid, t.tid, g_signal) != 0) {
      slots[i].state.store(kFree, std::memory_order_release);
      t.missing_reason = errno == ESRCH ? "the thread exited during the capture"
                                        : std::string("tgkill failed: ") + strerror(errno);
      return;
    }
    t.missing_reason.clear();
    sent.push_back(&slots[i]);
  };
  for (size_t i = 0; i < n; i++) {
    ThreadSnapshot& t = threads[i];
    if (t.self || t.skipped) continue;
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
    if (s->state.load(std::memory_order_acquire) == kDone) continue;
    ProcStat st;
    std::string stat = ReadProcFile("/proc/self/task/" + std::to_string(s->tid.load()) + "/stat");
    if (ParseProcStat(stat, &st) && st.state == 'R') runnable.push_back(s);
  }
  if (!runnable.empty()) CollectAnswers(runnable, NowNs() + kRunnableGraceNs, first_contact);
  bool quiet = DisarmAll(slots, n);

  for (size_t i = 0; i < n; i++) {
    ThreadSnapshot& t = threads[i];
    if (slots[i].state.load(std::memory_order_acquire) == kDone) CopyOut(slots[i], &t);
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
  g_slots.store(nullptr, std::memory_order_release);
  g_slot_count.store(0, std::memory_order_release);
  // A handler stuck mid-copy (a stopped thread) keeps its memory: leak it
  // rather than free what a handler may still write.
  if (quiet) {
    munmap(mem, region);
    delete[] slots;
  }
  return threads;
}

}  // namespace gmr
