#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "../util/proc.h"

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

// gmr's --timeout is at most 3600 s: a request older than that (or than the
// timeout it states) has no gmr waiting for it.
constexpr long kMaxRequestAgeS = 3600;

// One line on stderr, from the watchdog thread (not a signal handler).
void Say(const std::string& line) {
  std::string text = "guru-meditation: " + line + "\n";
  ssize_t ignored = write(2, text.data(), text.size());
  (void)ignored;
}

std::string Octal(mode_t mode) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The pid of the gmr that left a request: "<pid>.<gmr pid>.<nonce>.report".
long RequesterPid(const std::string& name) {
  size_t first = name.find('.');
  if (first == std::string::npos) return -1;
  char* end = nullptr;
  long pid = strtol(name.c_str() + first + 1, &end, 10);
  return end && *end == '.' && pid > 0 ? pid : -1;
}

bool ProcessExists(long pid) { return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

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
  if (!OwnedPrivateDirectory(dir)) {
    struct stat st;
    if (lstat(path.c_str(), &st) == 0)
      Say("ignoring the gmr request " + path + ": " + dir +
          " is not a directory of this process's user that only it can write");
    return false;
  }
  // With no descriptor free, in the spare's place (util/proc.h): gmr's
  // request must still be read, or its report would go elsewhere.
  int fd = OpenForReport(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT) return false;  // no request: a plain signal
    // No descriptor free, not even the spare's place: a plain signal too,
    // unless a request is there.
    struct stat there;
    if ((error == EMFILE || error == ENFILE) && lstat(path.c_str(), &there) != 0 && errno == ENOENT) return false;
    std::string why = error == ELOOP ? std::string("it is a symbolic link") : std::string("cannot open it (") + strerror(error) + ")";
    unlink(path.c_str());
    Say("ignoring the gmr request " + path + ": " + why);
    return false;
  }
  struct stat st;
  char buf[kMaxRequestBytes];
  ssize_t n = -1;
  std::string refused;
  if (fstat(fd, &st) != 0) {
    refused = std::string("cannot stat it (") + strerror(errno) + ")";
  } else if (!S_ISREG(st.st_mode)) {
    refused = "it is not a regular file";
  } else if (st.st_uid != geteuid()) {
    // Only gmr run as this process's user leaves requests here (it refuses
    // other users' processes, root's included).
    refused = "it belongs to uid " + std::to_string(st.st_uid) + ", not to this process's user (uid " +
              std::to_string(geteuid()) + ")";
  } else if (st.st_mode & 022) {
    refused = "it is writable by others (mode " + Octal(st.st_mode) + ")";
  } else if (st.st_nlink != 1) {
    refused = "it has " + std::to_string(st.st_nlink) + " links";
  } else if (st.st_size >= static_cast<off_t>(sizeof buf)) {
    refused = "it is larger than " + std::to_string(kMaxRequestBytes) + " bytes";
  } else {
    n = read(fd, buf, sizeof buf - 1);
  }
  CloseForReport(fd);
  // Taken, valid or not: a bad request must not be met again at every signal.
  unlink(path.c_str());
  if (!refused.empty()) {
    Say("ignoring the gmr request " + path + ": " + refused + "; the report goes where reports go");
    return false;
  }
  // Said, as every request not followed: the operator's gmr waits for it.
  const auto ignore = [&](const std::string& why) {
    Say("ignoring the gmr request " + path + ": " + why + "; the report goes where reports go");
    return false;
  };
  if (n <= 0) return ignore("it is empty (its gmr stopped while writing it, or could not write)");
  std::string text(buf, static_cast<size_t>(n));
  AttachRequest r;
  long timeout_s = kMaxRequestAgeS;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.rfind("out=", 0) == 0) {
      std::string name = line.substr(4);
      if (!PlainReportName(name)) return ignore("its report name is not one gmr makes");
      r.out_path = dir + "/" + name;
    } else if (line == "format=json" || line == "format=text") {
      r.format = line.substr(7);
    } else if (line.rfind("timeout=", 0) == 0) {
      long s = strtol(line.c_str() + 8, nullptr, 10);
      if (s > 0 && s < kMaxRequestAgeS) timeout_s = s;
    }
  }
  if (r.out_path.empty()) return ignore("it names no report file");
  // A request whose gmr is gone (killed midway) would send this report to a
  // file nobody reads: it is stale, and the report goes where reports go.
  long requester = RequesterPid(r.out_path.substr(dir.size() + 1));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long age_s = static_cast<long>(now.tv_sec - st.st_mtim.tv_sec);
  if (requester <= 0 || !ProcessExists(requester)) {
    Say("removed a stale gmr request " + path + ": the gmr that left it (pid " + std::to_string(requester) +
        ") is gone; the report goes where reports go");
    return false;
  }
  if (age_s > timeout_s + 1) {
    Say("removed a stale gmr request " + path + ": it is " + std::to_string(age_s) + " s old, its gmr waited " +
        std::to_string(timeout_s) + " s at most; the report goes where reports go");
    return false;
  }
  *out = r;
  return true;
}

}  // namespace gmr
