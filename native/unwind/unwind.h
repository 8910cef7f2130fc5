// Offline native unwinding of a thread from a copy of its registers and stack.
//
// The signal handler (native/capture/) only copies the interrupted registers
// and the top of the thread's stack into a preallocated buffer, then lets the
// thread go. Unwinding happens afterwards on the watchdog thread, from that
// copy, using the .eh_frame CFI of the loaded objects (node's C++ and libuv
// are built without frame pointers) and frame pointers where no CFI exists
// (V8's JIT code and embedded builtins always keep them).
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <cstdint>

namespace gmr {

// The registers the unwinder needs, per architecture (their DWARF numbers
// are in unwind.cc). pc, sp and fp come first on both: the x86-64 unit test
// (unwind_test.cc) writes the x86-64 block by offset.
struct Registers {
  uintptr_t pc = 0, sp = 0, fp = 0;  // x86-64: rip, rsp, rbp; AArch64: pc, sp, x29
#if defined(__aarch64__)
  uintptr_t lr = 0;                  // x30: the return address until the function saves it
  uintptr_t x19_x28[10] = {};        // the other callee-saved registers
#else
  uintptr_t rbx = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
#endif
  // Not for unwinding: a blocked system call's number (valid while the
  // thread stands at its system call instruction), its return value once it
  // returned, and its first two arguments (a futex's address and operation).
  // x86-64: rax (number and result alike), rdi, rsi; AArch64: x8, x0, x0, x1.
  uintptr_t sys_nr = 0, sys_ret = 0, arg0 = 0, arg1 = 0;
};

// Async-signal-safe: the registers of the code a signal interrupted, read
// from the context the kernel gave its handler (plain loads).
inline Registers RegistersFrom(const ucontext_t* uc) {
  Registers r;
#if defined(__x86_64__)
  const greg_t* g = uc->uc_mcontext.gregs;
  r.pc = g[REG_RIP];
  r.sp = g[REG_RSP];
  r.fp = g[REG_RBP];
  r.rbx = g[REG_RBX];
  r.r12 = g[REG_R12];
  r.r13 = g[REG_R13];
  r.r14 = g[REG_R14];
  r.r15 = g[REG_R15];
  r.sys_nr = r.sys_ret = g[REG_RAX];
  r.arg0 = g[REG_RDI];
  r.arg1 = g[REG_RSI];
#elif defined(__aarch64__)
  const auto& m = uc->uc_mcontext;
  r.pc = m.pc;
  r.sp = m.sp;
  r.fp = m.regs[29];
  r.lr = m.regs[30];
  for (int i = 0; i < 10; i++) r.x19_x28[i] = m.regs[19 + i];
  r.sys_nr = m.regs[8];
  r.sys_ret = r.arg0 = m.regs[0];
  r.arg1 = m.regs[1];
#else
  (void)uc;  // another architecture: no native frames
#endif
  return r;
}

// Async-signal-safe (one instruction): a return address as saved on the
// stack, without the pointer authentication code that code built with
// -mbranch-protection (parts of Node's arm64 binary) signs it with. xpaclri
// is in the hint space: a no-op on cores without pointer authentication.
// The identity elsewhere.
inline uintptr_t StripReturnAddress(uintptr_t ra) {
#if defined(__aarch64__)
  register uintptr_t x30 asm("x30") = ra;
  asm("hint 7" : "+r"(x30));  // xpaclri
  return x30;
#else
  return ra;
#endif
}

// A copy of [base, base + size) of the thread's stack, taken at capture time.
struct StackCopy {
  uintptr_t base = 0;            // address of data[0] in the thread
  size_t size = 0;               // bytes valid in data
  const unsigned char* data = nullptr;
};

// How a frame's return address was found. kLinkRegister (AArch64) is the
// first frame's x30 where that frame has no CFI (JIT code, V8's builtins):
// its caller if it is frameless, itself if it made a call since its own
// frame record: a caller drops it when it names the first frame's function.
enum class UnwindMethod : uint8_t { kContext = 0, kCfi = 1, kFramePointer = 2, kLinkRegister = 3 };

struct UnwoundFrame {
  uintptr_t pc;                  // the first frame's pc is exact; later ones are return addresses
  UnwindMethod method;
};

// Walks the stack. Not async-signal-safe (reads loader data, may allocate):
// call it on the watchdog thread only. Returns the number of frames written.
size_t Unwind(const Registers& regs, const StackCopy& stack,
              UnwoundFrame* frames, size_t max_frames);

}  // namespace gmr
