// Small readers of /proc for the watchdog thread (they allocate: never call
// them from a signal handler).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gmr {

// Whole file, or "" when it cannot be read. /proc files report size 0, so it
// reads until EOF rather than trusting stat.
std::string ReadProcFile(const std::string& path);

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

}  // namespace gmr
