#include "blocked_thread.h"

#include <cstdlib>
#include <string>

#include "../util/proc.h"
#include "../util/safe_read.h"

namespace gmr {
namespace {

struct SyscallSite {
  uintptr_t arg0 = 0;
  uintptr_t sp = 0;
  uintptr_t pc = 0;
};

// "nr arg1 ... arg6 sp pc" while in a system call; "running" or "-1 sp pc"
// (not in a syscall) otherwise.
bool ReadSyscallSite(int tid, SyscallSite* out) {
  std::string text = ReadProcFile("/proc/self/task/" + std::to_string(tid) + "/syscall");
  if (text.empty() || text.compare(0, 7, "running") == 0 || text[0] == '-') return false;
  const char* p = text.c_str();
  char* end = nullptr;
  uintptr_t fields[9];
  int n = 0;
  while (n < 9) {
    fields[n] = strtoull(p, &end, n == 0 ? 10 : 16);
    if (end == p) break;
    p = end;
    n++;
  }
  if (n != 9) return false;
  out->arg0 = fields[1];
  out->sp = fields[7];
  out->pc = fields[8];
  return out->sp != 0 && out->pc != 0;
}

}  // namespace

bool CaptureBlockedThread(ThreadSnapshot* t, size_t max_stack_bytes) {
  SyscallSite before, after;
  if (!ReadSyscallSite(t->tid, &before)) return false;
  std::vector<unsigned char> stack(max_stack_bytes);
  // Up to the first unreadable page: the stack's mapping ends somewhere above sp.
  size_t copied = CopyMapped(stack.data(), before.sp, max_stack_bytes);
  // The same syscall site afterwards: the thread did not move while copied.
  if (copied == 0 || !ReadSyscallSite(t->tid, &after) || after.sp != before.sp || after.pc != before.pc) return false;
  stack.resize(copied);
  t->regs = Registers{};
  t->regs.pc = before.pc;
  t->regs.sp = before.sp;
  t->regs.arg0 = before.arg0;
  t->in_syscall = true;
  t->stack = std::move(stack);
  t->captured = true;
  return true;
}

}  // namespace gmr
