#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace gmr {

std::string ReadProcFile(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, size_t(n));
    else if (n == 0 || errno != EINTR) break;
  }
  close(fd);
  return out;
}

std::vector<int> ListThreads() {
  std::vector<int> tids;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return tids;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    tids.push_back(atoi(e->d_name));
  }
  closedir(dir);
  return tids;
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
  std::string maps = ReadProcFile("/proc/self/maps");
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
