#include "attach.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace gmr {
namespace {

constexpr size_t kMaxRequestBytes = 4096;

// A plain file name the CLI makes: "<pid>.<cli pid>.<nonce>.report".
bool PlainReportName(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  for (char c : name)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) return false;
  return name.size() > 7 && name.compare(name.size() - 7, 7, ".report") == 0;
}

bool OwnedPrivateDirectory(const std::string& dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return false;
  return S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 022) == 0;
}

}  // namespace

std::string AttachDirectory() { return "/tmp/guru-meditation-" + std::to_string(geteuid()); }

bool TakeAttachRequest(AttachRequest* out) {
  const std::string dir = AttachDirectory();
  const std::string path = dir + "/" + std::to_string(getpid()) + ".request";
  if (!OwnedPrivateDirectory(dir)) return false;
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  char buf[kMaxRequestBytes];
  ssize_t n = -1;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && st.st_nlink == 1 &&
      st.st_size < static_cast<off_t>(sizeof buf)) {
    n = read(fd, buf, sizeof buf - 1);
  }
  close(fd);
  // Taken, valid or not: a bad request must not be met again at every signal.
  unlink(path.c_str());
  if (n <= 0) return false;
  std::string text(buf, static_cast<size_t>(n));
  AttachRequest r;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.rfind("out=", 0) == 0) {
      std::string name = line.substr(4);
      if (!PlainReportName(name)) return false;
      r.out_path = dir + "/" + name;
    } else if (line == "format=json" || line == "format=text") {
      r.format = line.substr(7);
    }
  }
  if (r.out_path.empty()) return false;
  *out = r;
  return true;
}

}  // namespace gmr
