#include "proc.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include "test_hooks.h"

namespace gmr {
namespace {

// A descriptor kept for the process's lifetime, and what it is: before each
// use fstat must find the same file under its number, in case the
// application closed it (a close_range, say) and the number went to a file
// of its own, which must be neither read as ours nor closed.
struct Held {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};

bool Open(Held* h, const char* path, int flags) {
  h->fd = open(path, flags | O_CLOEXEC);
  struct stat st;
  if (h->fd >= 0 && fstat(h->fd, &st) == 0) {
    h->dev = st.st_dev;
    h->ino = st.st_ino;
    return true;
  }
  if (h->fd >= 0) close(h->fd);
  h->fd = -1;
  return false;
}

bool Still(const Held& h) {
  struct stat st;
  return h.fd >= 0 && fstat(h.fd, &st) == 0 && st.st_dev == h.dev && st.st_ino == h.ino;
}

constexpr size_t kMaxNotedPaths = 32;   // returned by TakeUnopenedFiles
constexpr size_t kMaxUnopened = 4096;   // counted

// Heap-allocated, never destroyed: a report may be written while the
// process exits. `mu` is a timed mutex: the fatal-signal helper captures
// too, and if the thread that crashed held it, the helper waits a moment
// and goes on without the reserve rather than for ever.
struct Reserve {
  std::timed_mutex mu;
  bool reserved = false;
  pid_t pid = 0;  // whose /proc/self they are: a forked child is another process
  Held task, maps, spare;
  std::set<std::string> unopened;  // since TakeUnopenedFiles
};

Reserve& R() {
  static Reserve* reserve = new Reserve;
  return *reserve;
}

constexpr auto kLockWait = std::chrono::milliseconds(100);

bool IsOutOfDescriptors(int error) { return error == EMFILE || error == ENFILE; }

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, size_t(n));
    else if (n == 0 || errno != EINTR) break;
  }
  return out;
}

// Entries of a directory read with getdents64 from its start: the
// descriptor is one held across captures (rewound, as rewinddir does) or
// one just opened. Names that are numbers only (tids, descriptors).
bool ReadTids(int fd, std::vector<int>* tids) {
  if (lseek(fd, 0, SEEK_SET) != 0) return false;
  alignas(8) char buf[8192];
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    for (long pos = 0; pos < n;) {
      // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name
      unsigned short reclen;
      memcpy(&reclen, buf + pos + 16, sizeof reclen);
      const char* name = buf + pos + 19;
      if (name[0] >= '0' && name[0] <= '9') tids->push_back(atoi(name));
      if (reclen == 0) return false;
      pos += reclen;
    }
  }
}

// The held descriptor `which` of this process, under `lock` (taken here),
// or -1 when there is none to use.
int HeldFd(Held Reserve::*which, std::unique_lock<std::timed_mutex>* lock) {
  Reserve& r = R();
  *lock = std::unique_lock<std::timed_mutex>(r.mu, std::defer_lock);
  if (!lock->try_lock_for(kLockWait)) return -1;
  if (!r.reserved || r.pid != getpid() || !Still(r.*which)) {
    lock->unlock();
    return -1;
  }
  return (r.*which).fd;
}

}  // namespace

void ReserveReportDescriptors() {
  Reserve& r = R();
  std::lock_guard<std::timed_mutex> lock(r.mu);
  if (r.reserved && r.pid == getpid()) return;
  r.reserved = true;
  r.pid = getpid();
  Open(&r.task, "/proc/self/task", O_RDONLY | O_DIRECTORY);
  Open(&r.maps, "/proc/self/maps", O_RDONLY);
  // O_PATH on /: a descriptor that needs no permission and no device (a
  // chroot may have no /dev/null); it counts against RLIMIT_NOFILE as any.
  Open(&r.spare, "/", O_PATH | O_DIRECTORY);
}

int OpenForReport(const std::string& path, int flags, mode_t mode) {
  flags |= O_CLOEXEC;
  int fd = open(path.c_str(), flags, mode);
  if (fd >= 0 || !IsOutOfDescriptors(errno)) return fd;
  int error = errno;
  Reserve& r = R();
  std::unique_lock<std::timed_mutex> lock(r.mu, std::defer_lock);
  if (!lock.try_lock_for(kLockWait)) {
    errno = error;
    return -1;
  }
  // Its number closed and reused by the application: not ours to close,
  // and taken anew (CloseForReport) once a descriptor is free.
  if (r.spare.fd >= 0 && !Still(r.spare)) r.spare.fd = -1;
  if (r.reserved && r.spare.fd >= 0) {
    close(r.spare.fd);
    r.spare.fd = -1;
    // Test builds: another thread takes the place first, and keeps it.
    if (TestHook("spare_stolen")) open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    fd = open(path.c_str(), flags, mode);
    if (fd < 0 && IsOutOfDescriptors(errno)) {
      // Another thread took the place between the close and the open.
      // Once more, in case it has given it back by now.
      usleep(1000);
      fd = open(path.c_str(), flags, mode);
    }
    if (fd >= 0) return fd;  // CloseForReport takes the spare back
    error = errno;
    Open(&r.spare, "/", O_PATH | O_DIRECTORY);  // back, if its place is free again
  }
  // Each path once (the symbolizer tries a file again at each lookup in it).
  if (IsOutOfDescriptors(error) && r.unopened.size() < kMaxUnopened) r.unopened.insert(path);
  errno = error;
  return -1;
}

void CloseForReport(int fd) {
  if (fd >= 0) close(fd);
  Reserve& r = R();
  std::unique_lock<std::timed_mutex> lock(r.mu, std::defer_lock);
  if (!lock.try_lock_for(kLockWait)) return;
  // The spare was lent to this descriptor, or lost to another thread
  // earlier: its place is free now, or as soon as a descriptor is.
  if (r.reserved && r.spare.fd < 0) Open(&r.spare, "/", O_PATH | O_DIRECTORY);
}

std::vector<std::string> TakeUnopenedFiles(size_t* count) {
  Reserve& r = R();
  std::unique_lock<std::timed_mutex> lock(r.mu, std::defer_lock);
  *count = 0;
  if (!lock.try_lock_for(kLockWait)) return {};
  *count = r.unopened.size();
  std::vector<std::string> some;
  for (const std::string& path : r.unopened) {
    if (some.size() == kMaxNotedPaths) break;
    some.push_back(path);
  }
  r.unopened.clear();
  return some;
}

std::string ReadProcFile(const std::string& path) {
  int fd = OpenForReport(path, O_RDONLY);
  if (fd < 0) return "";
  std::string out = ReadAll(fd);
  CloseForReport(fd);
  return out;
}

std::vector<int> ListThreads() {
  std::vector<int> tids;
  {
    std::unique_lock<std::timed_mutex> lock;
    int fd = HeldFd(&Reserve::task, &lock);
    if (fd >= 0 && ReadTids(fd, &tids)) return tids;
    tids.clear();
  }
  int fd = OpenForReport("/proc/self/task", O_RDONLY | O_DIRECTORY);
  if (fd < 0) return tids;
  if (!ReadTids(fd, &tids)) tids.clear();
  CloseForReport(fd);
  return tids;
}

namespace {

// "VmRSS:	  123456 kB" in /proc/self/status: bytes, or -1.
int64_t StatusKb(const std::string& status, const char* key) {
  size_t at = status.find(key);
  if (at == std::string::npos || (at > 0 && status[at - 1] != '\n')) return -1;
  const char* p = status.c_str() + at + strlen(key);
  char* end = nullptr;
  long long kb = strtoll(p, &end, 10);
  return end == p ? -1 : static_cast<int64_t>(kb) * 1024;
}

}  // namespace

ProcessMemory ReadProcessMemory() {
  ProcessMemory out;
  std::string status = ReadProcFile("/proc/self/status");
  out.rss = StatusKb(status, "VmRSS:");
  out.peak_rss = StatusKb(status, "VmHWM:");
  out.swap = StatusKb(status, "VmSwap:");
  out.rss_anon = StatusKb(status, "RssAnon:");
  out.rss_file = StatusKb(status, "RssFile:");
  int fd = OpenForReport("/proc/self/fd", O_RDONLY | O_DIRECTORY);
  std::vector<int> fds;
  // The directory's own descriptor is listed too: not the process's.
  if (fd >= 0) {
    if (ReadTids(fd, &fds)) out.fds = static_cast<int64_t>(fds.size()) - 1;
    CloseForReport(fd);
  }
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.fd_soft_limit = limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(limit.rlim_cur);
    out.fd_hard_limit = limit.rlim_max == RLIM_INFINITY ? -1 : static_cast<int64_t>(limit.rlim_max);
  }
  return out;
}

bool ReadThreadStat(int tid, ProcStat* out) {
  return ParseProcStat(ReadProcFile("/proc/self/task/" + std::to_string(tid) + "/stat"), out);
}

bool ParseProcStat(const std::string& text, ProcStat* out) {
  size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return false;
  const char* p = text.c_str() + paren + 2;  // field 3: state
  out->state = *p;
  // utime and stime are fields 14 and 15; we stand on field 3.
  for (int field = 3; field < 14 && *p; field++) {
    p = strchr(p, ' ');
    if (!p) return false;
    p++;
  }
  static const long ticks = sysconf(_SC_CLK_TCK);
  char* end = nullptr;
  uint64_t utime = strtoull(p, &end, 10);
  uint64_t stime = strtoull(end, &end, 10);
  // starttime is field 22: six more on from stime (field 15).
  for (int field = 15; field < 22 && end && *end; field++) end = strchr(end + 1, ' ');
  out->start_ticks = end ? strtoull(end, nullptr, 10) : 0;
  out->utime_us = utime * 1000000u / uint64_t(ticks > 0 ? ticks : 100);
  out->stime_us = stime * 1000000u / uint64_t(ticks > 0 ? ticks : 100);
  return true;
}

std::vector<Mapping> ReadMappings() {
  std::vector<Mapping> out;
  std::string maps;
  {
    // /proc/self/maps is a seq_file: read again from its start, it is
    // written anew.
    std::unique_lock<std::timed_mutex> lock;
    int fd = HeldFd(&Reserve::maps, &lock);
    if (fd >= 0 && lseek(fd, 0, SEEK_SET) == 0) maps = ReadAll(fd);
  }
  if (maps.empty()) maps = ReadProcFile("/proc/self/maps");
  size_t pos = 0;
  while (pos < maps.size()) {
    size_t eol = maps.find('\n', pos);
    if (eol == std::string::npos) eol = maps.size();
    const char* line = maps.c_str() + pos;
    char* p = nullptr;
    Mapping m;
    m.start = strtoull(line, &p, 16);
    m.end = (p && *p == '-') ? strtoull(p + 1, &p, 16) : 0;
    if (p && p[0] == ' ' && eol - (p + 1 - maps.c_str()) >= 4 && m.end > m.start) {
      memcpy(m.perms, p + 1, 4);
      out.push_back(m);
    }
    pos = eol + 1;
  }
  return out;
}

}  // namespace gmr
