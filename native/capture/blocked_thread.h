// A thread that blocks every signal (Node's inspector I/O thread does) never
// runs the capture handler. While it sits in a system call its registers are
// not changing, and the kernel tells where it is: /proc/self/task/TID/syscall
// gives its stack pointer and program counter, and its stack can be copied
// with process_vm_readv (which fails cleanly on unmapped memory, where a
// memcpy would fault). That is enough for the unwinder's CFI walk.
// Watchdog thread only.
#pragma once

#include "thread_snapshot.h"

namespace gmr {

// Fills t->regs (pc, sp) and t->stack when the thread is blocked in a
// system call and stays there while it is read; sets t->captured. False
// otherwise (running, or it moved meanwhile).
bool CaptureBlockedThread(ThreadSnapshot* t, size_t max_stack_bytes);

}  // namespace gmr
