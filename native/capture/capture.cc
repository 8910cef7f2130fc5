#include "capture.h"

#include <v8.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "../codemap/code_map.h"
#include "../symbolize/symbolize.h"
#include "../unwind/unwind.h"
#include "../util/safe_read.h"
#include "../util/proc.h"

namespace gmr {
namespace {

constexpr size_t kMaxNativeFrames = 128;

uint64_t SinceUs(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now() - start).count();
}

// A JS thread is asked for its stack when the sampler saw JS frames or says
// it is inside V8: an idle thread has no JavaScript stack to give.
bool WantsJsStack(const V8Sample& s) {
  if (!s.isolate) return false;
  if (s.frame_count > 0) return true;
  return s.vm_state != v8::EXTERNAL && s.vm_state != v8::IDLE && s.vm_state != v8::ATOMICS_WAIT;
}

Symbolizer& SharedSymbolizer() {
  static Symbolizer* symbolizer = new Symbolizer;  // never destroyed: see isolates/registry.cc
  return *symbolizer;
}

void Symbolize(CapturedThread* t) {
  const ThreadSnapshot& s = t->snapshot;
  if (!s.captured) return;
  StackCopy copy;
  copy.base = s.regs.sp;
  copy.size = s.stack.size();
  copy.data = s.stack.data();
  UnwoundFrame frames[kMaxNativeFrames];
  size_t n = Unwind(s.regs, copy, frames, kMaxNativeFrames);
  Symbolizer& symbolizer = SharedSymbolizer();
  for (size_t i = 0; i < n; i++) {
    NativeFrame f;
    f.pc = frames[i].pc;
    f.method = static_cast<int>(frames[i].method);
    Symbol sym;
    // A return address points after the call: name the call's own symbol.
    uintptr_t lookup = i == 0 ? f.pc : f.pc - 1;
    if (symbolizer.Lookup(lookup, &sym)) {
      f.symbol = sym.name;
      f.module = sym.module;
      f.symbol_offset = sym.symbol_offset + (lookup != f.pc ? 1 : 0);
      f.module_offset = sym.module_offset + (lookup != f.pc ? 1 : 0);
    }
    t->native.push_back(std::move(f));
  }
}

// A thread asleep in the kernel under pthread_mutex_lock waits on the futex
// that is the mutex's first word, whose address the system call got as its
// first argument. glibc's mutex keeps its owner's tid two words in
// (__pthread_mutex_s: __lock, __count, __owner). Read with SafeRead: a
// wrong guess reads garbage, never faults, and the owner must be a thread
// of this process (checked by the caller).
void FindLockWait(CapturedThread* t) {
  const ThreadSnapshot& s = t->snapshot;
  // in_syscall is read at the signal; the OS state, read after it, may show
  // the thread running our handler, woken from that very wait.
  if (!s.captured || !s.in_syscall) return;
  bool in_mutex_lock = false;
  for (size_t i = 0; i < t->native.size() && i < 4; i++) {
    const std::string& name = t->native[i].symbol;
    if (name == "pthread_mutex_lock" || name == "__pthread_mutex_lock" || name == "pthread_mutex_timedlock" ||
        name == "pthread_mutex_clocklock")
      in_mutex_lock = true;
  }
  uintptr_t futex = s.regs.arg0;
  int lock_word = 0, owner = 0;
  if (!in_mutex_lock || futex == 0 || futex % alignof(int) != 0) return;
  if (!SafeRead(futex, &lock_word, sizeof lock_word) || lock_word == 0) return;
  if (!SafeRead(futex + 2 * sizeof(int), &owner, sizeof owner) || owner <= 0) return;
  t->lock_address = futex;
  t->lock_owner_tid = owner;
}

// Executable mappings: JIT code is in them, bytecode (heap data) is not.
class ExecRanges {
 public:
  void Load() {
    ranges_.clear();
    for (const Mapping& m : ReadMappings())
      if (m.executable()) ranges_.emplace_back(m.start, m.end);
  }
  bool Contains(uintptr_t addr) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), std::make_pair(addr, UINTPTR_MAX));
    return it != ranges_.begin() && addr < std::prev(it)->second;
  }

 private:
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges_;
};

JsFrame ToJsFrame(const CodeLookup& l) {
  JsFrame f;
  f.function = l.function;
  f.file = l.file;
  f.line = l.line;
  f.column = l.column;
  return f;
}

// A second frame read from x30 (AArch64, first frame without CFI) is the
// first one's caller only if it is executable and another function: a
// function with a frame record that made a call has its own address there.
void DropSelfCaller(CapturedThread* t, const ExecRanges& exec) {
  std::vector<NativeFrame>& n = t->native;
  if (n.size() < 2 || n[1].method != static_cast<int>(UnwindMethod::kLinkRegister)) return;
  bool same = !exec.Contains(n[1].pc) || (!n[0].symbol.empty() && n[0].symbol == n[1].symbol &&
                                          n[0].pc - n[0].symbol_offset == n[1].pc - n[1].symbol_offset);
  const V8Sample& s = t->snapshot.v8;
  CodeLookup found[2];
  const uintptr_t pcs[2] = {n[0].pc, n[1].pc - 1};
  if (!same && s.isolate && ResolveCodeAddresses(s.isolate, s.code_events, pcs, 2, found))
    same = found[0].kind != CodeKind::kUnknown && found[0].start == found[1].start;
  if (same) n.erase(n.begin() + 1);
}

// Names the V8 sample's frames and the native frames that run JavaScript,
// from the isolate's code map as it was when the sample was taken.
void NameFromCodeMap(CapturedThread* t, const ExecRanges& exec) {
  const V8Sample& s = t->snapshot.v8;
  if (!s.isolate) return;
  size_t ns = s.frames.size();
  size_t nn = t->native.size();
  std::vector<uintptr_t> pcs(s.frames);
  for (const NativeFrame& f : t->native) pcs.push_back(f.pc);
  std::vector<CodeLookup> found(pcs.size());
  if (!ResolveCodeAddresses(s.isolate, s.code_events, pcs.data(), pcs.size(), found.data())) return;
  for (size_t i = 0; i < ns; i++)
    if (found[i].kind == CodeKind::kJavaScript) t->sampled_js.push_back(ToJsFrame(found[i]));

  // V8 12 (Node 22 and later) runs its builtins from a copy in the code
  // range, outside the binary's symbols: the code map names them.
  for (size_t i = 0; i < nn; i++) {
    const CodeLookup& l = found[ns + i];
    if (!t->native[i].symbol.empty() || l.function.empty() ||
        (l.kind != CodeKind::kInterpreter && l.kind != CodeKind::kOther))
      continue;
    t->native[i].symbol = "Builtins_" + l.function;
    t->native[i].symbol_offset = t->native[i].pc - l.start;
  }
  // Native frames in JIT code name themselves.
  for (size_t i = 0; i < nn; i++) {
    if (found[ns + i].kind != CodeKind::kJavaScript) continue;
    t->native[i].has_js = true;
    t->native[i].js = ToJsFrame(found[ns + i]);
  }
  // An interpreted frame shows natively as one frame in the interpreter (a
  // return address in its entry trampoline, or a bytecode handler at the top)
  // while the sample has its bytecode address. Sampled JIT frames have the
  // very pcs of their native frames: they anchor both lists, and between
  // anchors interpreted frames pair up in order, from the outer end (only
  // the innermost one can lack a native frame, when a frameless builtin it
  // called hides it).
  auto is_bytecode = [&](size_t j) { return found[j].kind == CodeKind::kJavaScript && !exec.Contains(pcs[j]); };
  auto is_interpreter = [&](size_t i) { return found[ns + i].kind == CodeKind::kInterpreter; };
  size_t first_matched = nn;  // the innermost native frame the sample also has
  auto pair_segment = [&](size_t j0, size_t j1, size_t i0, size_t i1) {
    size_t j = j1, i = i1;
    for (;;) {
      while (j > j0 && !is_bytecode(j - 1)) j--;
      while (i > i0 && !is_interpreter(i - 1)) i--;
      if (j == j0 || i == i0) return;
      j--;
      i--;
      t->native[i].has_js = true;
      t->native[i].js = ToJsFrame(found[j]);
      first_matched = std::min(first_matched, i);
    }
  };
  size_t j0 = 0, i0 = 0;
  for (size_t j = 0; j < ns; j++) {
    if (found[j].kind != CodeKind::kJavaScript || is_bytecode(j)) continue;
    size_t i = i0;
    while (i < nn && t->native[i].pc != pcs[j]) i++;
    if (i == nn) continue;  // not in the native stack: no anchor
    pair_segment(j0, j, i0, i);
    first_matched = std::min(first_matched, i);
    j0 = j + 1;
    i0 = i + 1;
  }
  pair_segment(j0, ns, i0, nn);

  // V8's sampler drops a top frame that is not interpreted (the thread is
  // inside its JIT code): the native stack has it.
  std::vector<JsFrame> top;
  for (size_t i = 0; i < first_matched; i++)
    if (found[ns + i].kind == CodeKind::kJavaScript) top.push_back(t->native[i].js);
  t->sampled_js.insert(t->sampled_js.begin(), top.begin(), top.end());
}

}  // namespace

// Whether thread `tid` waits for events in its own event loop now (asked
// again of /proc: it may have gone back since WalkLoops looked).
static bool LoopWaiting(const std::vector<LoopInfo>& loops, int tid) {
  for (const LoopInfo& loop : loops)
    if (loop.tid == tid) return loop.waiting || (loop.backend_fd >= 0 && WaitingOnLoop(tid, loop.backend_fd));
  return false;
}

constexpr int kQuickContactTries = 10;
constexpr auto kQuickContactPause = std::chrono::milliseconds(2);

namespace {

// Unknown JavaScript threads (`again`) the signal found where they could not
// be held (V8's compiler or runtime, a garbage collection: thread_snapshot.cc,
// StoppedWithoutLocks), signalled again at once, a few times: a busy or
// starting worker is soon back in JavaScript or asleep. `contact` records
// each thread it reaches in `contacted`.
void ContactAgain(SnapshotOptions light, std::set<int> again, const std::set<int>& contacted, const FirstContactFn& contact) {
  light.max_stack_bytes = 256;  // the handler's copy is not used
  light.identify_only = true;
  for (int i = 0; i < kQuickContactTries && !again.empty(); i++) {
    std::this_thread::sleep_for(kQuickContactPause);
    light.only = [&](int tid) { return again.count(tid) > 0; };
    for (const ThreadSnapshot& s : CaptureAllThreads(light, contact))
      if (!s.captured || !s.v8.isolate || contacted.count(s.tid) || IsolateKnown(s.v8.isolate)) again.erase(s.tid);
  }
}

}  // namespace

bool MeetNewIsolates(const SnapshotOptions& options) {
  // Threads met already, by tid and start time (a tid may be reused by a
  // later thread): they are not signalled again, so a worker's start costs
  // the threads that were there no signal (and their system calls no EINTR).
  static auto* met = new std::map<int, uint64_t>;  // the watchdog's only
  std::map<int, uint64_t> started;
  for (int tid : ListThreads()) {
    ProcStat st;
    if (ReadThreadStat(tid, &st)) started[tid] = st.start_ticks;
  }
  for (auto it = met->begin(); it != met->end();) {
    auto now = started.find(it->first);
    it = now != started.end() && now->second == it->second ? std::next(it) : met->erase(it);
  }
  SnapshotOptions light = options;
  light.max_stack_bytes = 256;  // the handler's copy is not used
  light.identify_only = true;
  light.only = [&](int tid) { return started.count(tid) && !met->count(tid); };
  // The round's destructor leaves the posted interrupts to their callbacks,
  // which register the isolate on its own thread.
  JsStackRound round;
  std::set<int> contacted;
  auto contact = [&](v8::Isolate* isolate, int tid) {
    round.Post(isolate, false);
    contacted.insert(tid);
  };
  bool all_met = true;
  // Tried again at once (ContactAgain): the next round is 100 ms away.
  std::set<int> again;
  for (const ThreadSnapshot& s : CaptureAllThreads(light, contact)) {
    if (s.skipped) continue;  // met before
    if (!s.captured) {        // not answering (or blocking the signal): asked again next round
      all_met = false;
      continue;
    }
    // A JavaScript thread is met once it is known with its identity (its
    // interrupt, posted above, registers it); other threads at once.
    if (s.v8.isolate && IdentityOf(s.v8.isolate, s.tid).thread_id < 0) {
      all_met = false;
      if (!contacted.count(s.tid) && !IsolateKnown(s.v8.isolate)) again.insert(s.tid);
    } else {
      met->emplace(s.tid, started[s.tid]);
    }
  }
  ContactAgain(light, again, contacted, contact);
  RequestMissingIdentities();
  return all_met && !SwitchesPending();
}

Capture CaptureProcess(const CaptureSettings& settings) {
  Capture out;
  auto start = std::chrono::steady_clock::now();
  out.started_mono_ns = MonotonicNs();
  out.started_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  size_t earlier = 0;
  TakeUnopenedFiles(&earlier);  // not this capture's
  JsStackRound round;
  std::set<int> contacted;
  auto contact = [&](v8::Isolate* isolate, int tid) {
    round.Post(isolate, false);
    contacted.insert(tid);
  };
  std::vector<ThreadSnapshot> snapshots = CaptureAllThreads(settings.threads, contact);
  // A worker met for the first time in V8's compiler would otherwise give
  // neither its JavaScript stack nor its threadId in this report.
  std::set<int> again;
  for (const ThreadSnapshot& s : snapshots)
    if (s.captured && s.v8.isolate && !contacted.count(s.tid) && !IsolateKnown(s.v8.isolate)) again.insert(s.tid);
  ContactAgain(settings.threads, again, contacted, contact);
  out.signal_phase_us = SinceUs(start);
  // V8 12 (Node 22 and later) leaves a thread that called into native code
  // (an API callback such as spawnSync) in the JS state unless a profiler
  // runs. JavaScript makes no system calls: a "JS" thread signalled in one
  // and asleep in the kernel is in a native call, EXTERNAL as V8 11 says,
  // and is not waited for. (A thread caught at the system call that returns
  // from a signal handler is running, and answers: see below.)
  for (ThreadSnapshot& s : snapshots) {
    if (s.v8.isolate && s.v8.vm_state == v8::JS && s.in_syscall && (s.os_state == 'S' || s.os_state == 'D'))
      s.v8.vm_state = v8::EXTERNAL;
  }

  RequestMissingIdentities();  // for the next report: this one does not wait for them
  auto js_start = std::chrono::steady_clock::now();
  std::vector<v8::Isolate*> wanted;
  std::map<int, v8::Isolate*> unanswered;
  for (const ThreadSnapshot& s : snapshots) {
    if (s.tid == settings.caller_tid) continue;
    v8::Isolate* isolate = s.v8.isolate;
    if (!s.captured && !s.self && !s.skipped) {
      // It did not answer the capture signal; a JavaScript thread is still
      // known by its tid, and may answer an interrupt.
      isolate = KnownIsolateOn(s.tid);
      if (!isolate) continue;
      unanswered[s.tid] = isolate;
    } else if (!WantsJsStack(s.v8)) {
      continue;
    }
    round.Post(isolate, true);
    wanted.push_back(isolate);
  }
  // Every JavaScript thread records its heap figures (those running
  // JavaScript also do when they answer the round above).
  std::vector<v8::Isolate*> idle;
  for (const ThreadSnapshot& s : snapshots)
    if (s.v8.isolate && s.v8.vm_state == v8::IDLE && IsolateKnown(s.v8.isolate)) idle.push_back(s.v8.isolate);
  AskHeapFigures(idle);
  // Unwinding, symbolizing and naming from the code maps overlap with the
  // wait for the interrupts.
  out.threads.reserve(snapshots.size());
  SharedSymbolizer().Refresh();
  out.objects = SharedSymbolizer().Objects();
  ExecRanges exec;
  exec.Load();
  for (ThreadSnapshot& s : snapshots) {
    CapturedThread t;
    t.snapshot = std::move(s);
    Symbolize(&t);
    FindLockWait(&t);
    DropSelfCaller(&t, exec);
    NameFromCodeMap(&t, exec);
    t.snapshot.stack.clear();
    t.snapshot.stack.shrink_to_fit();
    out.threads.push_back(std::move(t));
  }
  // A lock's owner is one of the threads listed, or the guess was wrong.
  for (CapturedThread& t : out.threads) {
    if (!t.lock_owner_tid) continue;
    bool listed = std::any_of(out.threads.begin(), out.threads.end(),
                              [&](const CapturedThread& o) { return o.snapshot.tid == t.lock_owner_tid; });
    if (!listed) t.lock_address = t.lock_owner_tid = 0;
  }
  // Read while the JS threads answer; a stuck loop is read as it stands.
  out.loops = WalkLoops(settings.max_handles);
  out.memory = ReadProcessMemory();
  round.Wait(settings.js_timeout_ms, wanted);
  out.js_phase_us = SinceUs(js_start);

  for (CapturedThread& t : out.threads) {
    v8::Isolate* isolate = t.snapshot.v8.isolate;
    auto known = unanswered.find(t.snapshot.tid);
    if (known != unanswered.end()) {
      isolate = t.unanswered_isolate = known->second;
      t.js_requested = true;
      if (const JsStack* js = round.Result(isolate)) t.js = *js;
    } else if (t.snapshot.tid == settings.caller_tid) {
      t.js_requested = true;
      t.js = settings.caller_stack;
    } else if (isolate && WantsJsStack(t.snapshot.v8)) {
      t.js_requested = true;
      if (const JsStack* js = round.Result(isolate)) t.js = *js;
      // Asleep again by the time it was read (it had just run our handler):
      // not answering, it was in its native call after all.
      if (!t.js.answered && t.snapshot.in_syscall && t.snapshot.v8.vm_state == v8::JS) t.snapshot.v8.vm_state = v8::EXTERNAL;
      // Running for a moment when signalled (woken by the report's own
      // signal, say) and back in its event loop's wait before any interrupt
      // check: idle, with no JavaScript to give, not busy: it waits in its
      // own epoll now (or did when WalkLoops looked).
      if (!t.js.answered && LoopWaiting(out.loops, t.snapshot.tid)) {
        t.js_requested = false;
        t.snapshot.v8.vm_state = v8::IDLE;
      }
    }
    if (isolate) {
      t.identity = IdentityOf(isolate, t.snapshot.tid);
      t.heap = HeapFiguresOf(isolate);
    }
  }
  out.unopened_files = TakeUnopenedFiles(&out.unopened_count);
  out.total_us = SinceUs(start);
  out.ended_mono_ns = MonotonicNs();
  return out;
}

}  // namespace gmr
