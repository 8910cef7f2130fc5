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

}  // namespace gmr
