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

// x86-64 registers the unwinder needs (DWARF numbering differs; see unwind.cc).
struct Registers {
  uintptr_t rip = 0, rsp = 0, rbp = 0, rbx = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  // Not for unwinding: a blocked system call's number (or its return value
  // once it returned) and its first two arguments (a futex's address and
  // operation).
  uintptr_t rax = 0, rdi = 0, rsi = 0;
};

// Async-signal-safe: the registers of the code a signal interrupted, read
// from the context the kernel gave its handler.
inline Registers RegistersFrom(const ucontext_t* uc) {
  Registers r;
#if defined(__x86_64__)
  const greg_t* g = uc->uc_mcontext.gregs;
  r.rip = g[REG_RIP];
  r.rsp = g[REG_RSP];
  r.rbp = g[REG_RBP];
  r.rbx = g[REG_RBX];
  r.r12 = g[REG_R12];
  r.r13 = g[REG_R13];
  r.r14 = g[REG_R14];
  r.r15 = g[REG_R15];
  r.rax = g[REG_RAX];
  r.rdi = g[REG_RDI];
  r.rsi = g[REG_RSI];
#else
  (void)uc;
#endif
  return r;
}

// A copy of [base, base + size) of the thread's stack, taken at capture time.
struct StackCopy {
  uintptr_t base = 0;            // address of data[0] in the thread
  size_t size = 0;               // bytes valid in data
  const unsigned char* data = nullptr;
};

// How a frame's return address was found.
enum class UnwindMethod : uint8_t { kContext = 0, kCfi = 1, kFramePointer = 2 };

struct UnwoundFrame {
  uintptr_t pc;                  // the first frame's pc is exact; later ones are return addresses
  UnwindMethod method;
};

// Walks the stack. Not async-signal-safe (reads loader data, may allocate):
// call it on the watchdog thread only. Returns the number of frames written.
size_t Unwind(const Registers& regs, const StackCopy& stack,
              UnwoundFrame* frames, size_t max_frames);

}  // namespace gmr
