#include "safe_read.h"

#include <sys/uio.h>
#include <unistd.h>

namespace gmr {

// process_vm_readv on our own pid: the kernel copies, and reports an
// unmapped page as EFAULT instead of delivering a fault.
bool SafeRead(uintptr_t address, void* out, size_t size) {
  if (address == 0) return false;
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

std::string SafeReadString(uintptr_t address, size_t max) {
  std::string out;
  char chunk[64];
  while (out.size() < max) {
    // Chunks that stop at a 64-byte boundary never cross into the next page
    // before the bytes before it are known to be readable.
    size_t n = 64 - (address % 64);
    if (!SafeRead(address, chunk, n)) break;
    for (size_t i = 0; i < n; i++) {
      if (chunk[i] == '\0' || out.size() == max) return out;
      out += chunk[i];
    }
    address += n;
  }
  return out;
}

}  // namespace gmr
