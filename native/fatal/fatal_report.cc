#include "fatal_report.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "../capture/thread_snapshot.h"
#include "../memory/heap_figures.h"
#include "../symbolize/symbolize.h"
#include "../util/proc.h"
#include "../unwind/unwind.h"
#include "../util/threads.h"
#include "fatal_signal.h"
#include "../util/test_hooks.h"
#include "safe_text.h"
#include "thread_text.h"

namespace gmr {
namespace {

constexpr size_t kMaxFrames = 128;
constexpr size_t kOtherStackBytes = 64 * 1024;
constexpr int kCaptureTimeoutMs = 500;

// The report's text: static, so writing it needs no allocation (the
// capture, unwinding and symbolizing before it do allocate).
char g_text[1 << 20];
std::atomic<bool> g_started{false};

void WriteFrames(SafeText* w, Symbolizer* symbolizer, const Registers& regs, const unsigned char* stack, size_t size) {
  StackCopy copy;
  copy.base = regs.sp;
  copy.size = size;
  copy.data = stack;
  UnwoundFrame frames[kMaxFrames];
  size_t n = Unwind(regs, copy, frames, kMaxFrames);
  // x30 read as the first frame's caller (AArch64) is that frame itself
  // when it made a call since its frame record (see UnwindMethod).
  Symbol first, second;
  if (n >= 2 && frames[1].method == UnwindMethod::kLinkRegister &&
      symbolizer->Lookup(frames[0].pc, &first) && symbolizer->Lookup(frames[1].pc - 1, &second) &&
      frames[0].pc - first.symbol_offset == frames[1].pc - 1 - second.symbol_offset) {
    memmove(&frames[1], &frames[2], (n - 2) * sizeof frames[0]);
    n--;
  }
  w->Str("Native stack:\n");
  if (n == 0) w->Str("  (no frames)\n");
  for (size_t i = 0; i < n; i++) {
    uintptr_t pc = frames[i].pc;
    // A return address points after its call: name the call's symbol.
    uintptr_t lookup = i == 0 ? pc : pc - 1;
    uintptr_t adjust = lookup != pc ? 1 : 0;
    Symbol sym;
    FrameText f;
    f.pc = pc;
    f.found = symbolizer->Lookup(lookup, &sym);
    if (f.found) {
      f.symbol = sym.name.c_str();
      f.symbol_offset = sym.symbol_offset + adjust;
      f.module = sym.module.c_str();
      f.module_offset = sym.module_offset + adjust;
    }
    WriteFrameLine(w, i, n, f);
  }
}

void WriteHeading(SafeText* w, const ThreadSnapshot& t, const CrashRecord& crash) {
  bool crashed = t.tid == crash.tid;
  bool js = (crashed ? crash.isolate : t.v8.isolate) != nullptr;
  const char* kind = t.tid == getpid() ? "main" : js ? "worker" : t.self ? "guru-meditation" : "other";
  WriteThreadHeading(w, t.tid, t.name.c_str(), kind, crashed);
}

void WriteThreads(SafeText* w, Symbolizer* symbolizer, const CrashRecord& crash,
                  const std::vector<ThreadSnapshot>& threads) {
  WriteBox(w, "Threads");
  w->Dec(uint64_t(threads.size())).Str(" threads (native stacks only: written after a fatal signal)\n");
  // The crashing thread first: it is what the reader came for.
  for (int pass = 0; pass < 2; pass++) {
    for (const ThreadSnapshot& t : threads) {
      bool crashed = t.tid == crash.tid;
      if ((pass == 0) != crashed) continue;
      w->Char('\n');
      WriteHeading(w, t, crash);
      // The crashed thread waits in its handler for this report: its OS state says nothing.
      w->Str("state = ").Str(crashed ? "crashed (waiting in its signal handler for this report)" : ThreadStateName(t.os_state)).Char('\n');
      w->Str("cpu = user ").Dec(t.cpu_user_us / 1000).Str(" ms, system ").Dec(t.cpu_system_us / 1000).Str(" ms\n");
      if (crashed) {
        WriteFrames(w, symbolizer, crash.regs, crash.stack, crash.stack_size);
      } else if (t.captured) {
        WriteFrames(w, symbolizer, t.regs, t.stack.data(), t.stack.size());
      } else {
        w->Str("Native stack:\n  (").Str(t.self ? "the thread writing this report" : t.missing_reason.c_str()).Str(")\n");
      }
    }
  }
}

// A figure in kB, as /proc gives them; "?" when it could not be read.
SafeText& Kb(SafeText* w, int64_t bytes) {
  return bytes < 0 ? w->Str("?") : w->Dec(bytes / 1024).Str(" kB");
}

// The process's figures read now from /proc, and each JavaScript thread's
// heap as it last recorded it (at its last collection, or its last answer
// to a report): V8 cannot be asked during a crash. A thread whose figures
// are under the table's lock (the crashed thread may hold it) is skipped.
void WriteMemory(SafeText* w, const CrashRecord& crash, const std::vector<ThreadSnapshot>& threads) {
  WriteBox(w, "Memory");
  const ProcessMemory m = ReadProcessMemory();
  w->Str("rss = ");
  Kb(w, m.rss).Str(" (peak ");
  Kb(w, m.peak_rss).Str("), anonymous ");
  Kb(w, m.rss_anon).Str(", file-backed ");
  Kb(w, m.rss_file).Str(", swap ");
  Kb(w, m.swap).Char('\n');
  auto count = [&](int64_t n) -> SafeText& { return n < 0 ? w->Str("?") : w->Dec(n); };
  w->Str("file descriptors = ");
  count(m.fds).Str(" (limit ");
  count(m.fd_soft_limit).Str(")\n");
  const uint64_t now = MonotonicNs();
  auto heap = [&](int tid, v8::Isolate* isolate) {
    HeapFigures h;
    if (!isolate) return;
    w->Str("#").Dec(int64_t(tid)).Str(tid == getpid() ? " (main): " : " (worker): ");
    if (!TryHeapFiguresOf(isolate, &h)) {
      w->Str("(its figures are being recorded: not read)\n");
    } else if (h.source == HeapFiguresSource::kNone) {
      w->Str("(none recorded yet)\n");
    } else {
      w->Str("heap used ").Dec(uint64_t(h.used / 1024)).Str(" kB of ").Dec(uint64_t(h.total / 1024))
          .Str(" kB (limit ").Dec(uint64_t(h.limit / 1024)).Str(" kB), external ").Dec(uint64_t(h.external / 1024))
          .Str(" kB; ").Dec(h.gc_count).Str(" collections; as of ")
          .Dec(uint64_t(now > h.at_mono_ns ? (now - h.at_mono_ns) / 1000000 : 0))
          .Str(h.source == HeapFiguresSource::kGc ? " ms before the crash (its last collection)\n"
                                                    : " ms before the crash (when it was met, or last answered a report)\n");
    }
  };
  heap(crash.tid, crash.isolate);
  for (const ThreadSnapshot& t : threads)
    if (t.tid != crash.tid) heap(t.tid, t.v8.isolate);
}

void* HelperMain(void* arg) {
  FatalHelperStarted();
  prctl(PR_SET_NAME, "gmr-fatal", 0, 0, 0);
  auto* symbolizer = static_cast<Symbolizer*>(arg);
  // The symbol tables now, while the process is healthy: at the crash only
  // objects loaded since are read.
  symbolizer->Refresh();
  const CrashRecord& crash = WaitForCrash();
  // Test builds: the helper faults as a crash could make it.
  if (TestHook("fatal_helper_fault")) *static_cast<volatile int*>(nullptr) = 1;
  SafeText w(g_text, sizeof g_text - 64);
  SnapshotOptions options;
  options.max_stack_bytes = kOtherStackBytes;
  options.timeout_ms = kCaptureTimeoutMs;
  options.skip_tid = crash.tid;
  std::vector<ThreadSnapshot> threads = CaptureAllThreads(options, nullptr);
  symbolizer->Refresh();  // objects loaded since set-up
  WriteThreads(&w, symbolizer, crash, threads);
  WriteMemory(&w, crash, threads);
  if (w.truncated()) w.Str("\n(report truncated)\n");
  if (BeginHelperWrite()) {
    w.WriteTo(crash.fd);
    EndHelperWrite();
  }
  for (;;) pause();  // the process is about to die
  return nullptr;
}

}  // namespace

std::string StartFatalHelper() {
  if (g_started.exchange(true)) return "";
  // Its own symbolizer: the watchdog's is used without a lock on its thread.
  auto* symbolizer = new Symbolizer;
  int rc = StartQuietThread(HelperMain, symbolizer, 1 << 20);
  if (rc != 0) {
    g_started = false;
    delete symbolizer;
    return std::string("cannot start the fatal-signal helper thread: ") + strerror(rc);
  }
  return "";
}

}  // namespace gmr
