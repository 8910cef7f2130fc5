#include "safe_read.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace gmr {
namespace {

// Where process_vm_readv is missing (ENOSYS: qemu-user does not implement
// it; EPERM: a seccomp filter that forbids it), /proc/self/mem instead,
// read with pread: also one system call, also an error (EIO) rather than
// a fault on an unmapped page, and it stops at the first one as well.
// Unlike process_vm_readv it also reads mappings without read permission
// (the kernel forces the read); callers that copy stacks clamp to readable
// mappings already.
//
// Async-signal-safe: atomics, getpid, open and pread. The descriptor is
// opened at the first failure, by whichever thread meets it (a racing one
// closes its own), and kept; with its pid, so that a forked child opens its
// own rather than reading its parent.
std::atomic<bool> g_no_vm_readv{false};
std::atomic<uint64_t> g_mem{0};  // pid << 32 | fd + 1; 0: not opened

bool VmReadvMissing(int error) { return error == ENOSYS || error == EPERM; }

int MemFd() {
  const uint64_t pid = static_cast<uint32_t>(getpid());
  uint64_t mem = g_mem.load(std::memory_order_acquire);
  if (mem != 0 && mem >> 32 == pid) return static_cast<int>(mem & 0xffffffffu) - 1;
  int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (!g_mem.compare_exchange_strong(mem, pid << 32 | static_cast<uint64_t>(fd + 1), std::memory_order_acq_rel)) {
    close(fd);
    return mem >> 32 == pid ? static_cast<int>(mem & 0xffffffffu) - 1 : -1;
  }
  return fd;
}

// Up to n bytes at src through /proc/self/mem; how many were read.
size_t ReadMem(void* dst, uintptr_t src, size_t n) {
  const int fd = MemFd();
  if (fd < 0 || src > static_cast<uintptr_t>(INT64_MAX)) return 0;
  ssize_t got = pread(fd, dst, n, static_cast<off_t>(src));
  return got > 0 ? static_cast<size_t>(got) : 0;
}

}  // namespace

// process_vm_readv on our own pid: the kernel copies, and reports an
// unmapped page as EFAULT instead of delivering a fault.
bool SafeRead(uintptr_t address, void* out, size_t size) {
  if (address == 0) return false;
  if (!g_no_vm_readv.load(std::memory_order_relaxed)) {
    iovec local{out, size};
    iovec remote{reinterpret_cast<void*>(address), size};
    ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (got >= 0 || !VmReadvMissing(errno)) return got == static_cast<ssize_t>(size);
    g_no_vm_readv.store(true, std::memory_order_relaxed);
  }
  return ReadMem(out, address, size) == size;
}

size_t CopyMapped(unsigned char* dst, uintptr_t src, size_t n) {
  constexpr size_t kPage = 4096;
  constexpr size_t kMaxPages = 64;  // 256 KB a call, beyond the largest stack copy
  iovec local{dst, n};
  iovec remote[kMaxPages];
  size_t count = 0;
  uintptr_t at = src;
  for (; at < src + n && count < kMaxPages; count++) {
    uintptr_t end = std::min<uintptr_t>((at & ~(kPage - 1)) + kPage, src + n);
    remote[count] = {reinterpret_cast<void*>(at), end - at};
    at = end;
  }
  if (g_no_vm_readv.load(std::memory_order_relaxed)) return ReadMem(dst, src, at - src);
  ssize_t got = process_vm_readv(getpid(), &local, 1, remote, count, 0);
  if (got < 0 && VmReadvMissing(errno)) {
    g_no_vm_readv.store(true, std::memory_order_relaxed);
    return ReadMem(dst, src, at - src);
  }
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
