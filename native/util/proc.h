// Small readers of /proc for the watchdog thread, and the descriptors a
// report needs when the process has none left. They allocate and take a
// mutex (the spare is lent to one open at a time, the held descriptors'
// offsets are shared), neither of which is async-signal-safe: never call
// them from a signal handler. The capture signal's handler opens nothing;
// the watchdog, a plain thread, does this work after it.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gmr {

// A report must come even when every file descriptor of the process is
// taken (EMFILE; or the system's, ENFILE). Called once, when the watchdog
// starts, this keeps three descriptors for the process's lifetime:
// /proc/self/task and /proc/self/maps, re-read from their start by each
// capture (the thread list and the stack copies' bounds never need a new
// descriptor), and a spare (O_PATH on /) whose place OpenForReport gives
// up for a moment when an open fails for want of a descriptor.
void ReserveReportDescriptors();

// open(2) with O_CLOEXEC; when that fails with EMFILE or ENFILE, once more
// in the place of the spare, closed for it. Another thread may take that
// place first: then it waits a millisecond and tries once more, in case
// that thread gave it back, and else fails with EMFILE, the path noted for
// TakeUnopenedFiles. Close what it returns with CloseForReport, which takes
// the spare back.
int OpenForReport(const std::string& path, int flags, mode_t mode = 0);

// How every report file is created, here and in src/output.ts: a new file
// (O_EXCL fails on anything there, a planted link included), never through
// a symbolic link, mode 0600. Plain constants: the fatal signal's handler
// uses them too.
constexpr int kNewFileFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
constexpr mode_t kNewFileMode = 0600;
void CloseForReport(int fd);

// The paths OpenForReport could not open for want of a descriptor since
// the last call: the first 32 in order of name, and how many there were
// (counted up to 4096).
std::vector<std::string> TakeUnopenedFiles(size_t* count);

// Whole file, or "" when it cannot be read. /proc files report size 0, so it
// reads until EOF rather than trusting stat. Opened with OpenForReport.
std::string ReadProcFile(const std::string& path);

// The process's memory and descriptors, for the report's Memory section:
// /proc/self/status (kB figures, as bytes), the entries of /proc/self/fd
// (read with getdents64 through a descriptor OpenForReport gives: the
// spare's place when none is left) and RLIMIT_NOFILE. A figure that could
// not be read is -1.
struct ProcessMemory {
  int64_t rss = -1, peak_rss = -1, swap = -1, rss_anon = -1, rss_file = -1;
  int64_t fds = -1;
  int64_t fd_soft_limit = -1, fd_hard_limit = -1;  // -1 also for unlimited
};
ProcessMemory ReadProcessMemory();

// Thread ids of this process, from /proc/self/task.
std::vector<int> ListThreads();

// One line of /proc/self/maps: the range and its permissions ("r-xp").
struct Mapping {
  uintptr_t start = 0;
  uintptr_t end = 0;
  char perms[5] = {0};
  bool readable() const { return perms[0] == 'r'; }
  bool executable() const { return perms[2] == 'x'; }
};

// This process's mappings, in address order.
std::vector<Mapping> ReadMappings();

struct ProcStat {
  char state = '?';
  uint64_t utime_us = 0;
  uint64_t stime_us = 0;
  uint64_t start_ticks = 0;  // when the thread started: a tid with another start is another thread
};

// Parses /proc/.../stat text. The command name may hold spaces and ')', so
// fields are counted from the last ')'.
bool ParseProcStat(const std::string& text, ProcStat* out);
// /proc/self/task/TID/stat, read and parsed now: false when it could not be.
bool ReadThreadStat(int tid, ProcStat* out);

}  // namespace gmr
