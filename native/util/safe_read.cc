#include "safe_read.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

namespace gmr {

// process_vm_readv on our own pid: the kernel copies, and reports an
// unmapped page as EFAULT instead of delivering a fault.
bool SafeRead(uintptr_t address, void* out, size_t size) {
  if (address == 0) return false;
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

size_t CopyMapped(unsigned char* dst, uintptr_t src, size_t n) {
  constexpr size_t kPage = 4096;
  constexpr size_t kMaxPages = 64;  // 256 KB a call, beyond the largest stack copy
  iovec local{dst, n};
  iovec remote[kMaxPages];
  size_t count = 0;
  for (uintptr_t at = src; at < src + n && count < kMaxPages; count++) {
    uintptr_t end = std::min<uintptr_t>((at & ~(kPage - 1)) + kPage, src + n);
    remote[count] = {reinterpret_cast<void*>(at), end - at};
    at = end;
  }
  ssize_t got = process_vm_readv(getpid(), &local, 1, remote, count, 0);
  return got > 0 ? static_cast<size_t>(got) : 0;
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
