// Reads of this process's memory that cannot fault: for structures another
// thread owns and may change or free while they are read (an event loop's
// handle list, read from the watchdog). An unmapped address is a failed
// read, not a SIGSEGV.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gmr {

// Copies `size` bytes at `address` into `out`; false unless all were read.
bool SafeRead(uintptr_t address, void* out, size_t size);

template <typename T>
bool SafeRead(const void* address, T* out) {
  return SafeRead(reinterpret_cast<uintptr_t>(address), out, sizeof(T));
}

// A NUL-terminated string of at most `max` bytes; "" when unreadable.
std::string SafeReadString(uintptr_t address, size_t max);

// Async-signal-safe (one process_vm_readv system call, or where that is
// missing, as under qemu-user, one pread of /proc/self/mem: no libc state, no
// lock): copies up to `n` bytes at `src`, a page an iovec, up to the first
// page that is not mapped. Returns how many were copied. It also reads
// dead bytes and sanitizer redzones without being instrumented. For a
// thread's stack, from its signal handler.
size_t CopyMapped(unsigned char* dst, uintptr_t src, size_t n);

}  // namespace gmr
