#include "fallback_report.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "../fatal/safe_text.h"
#include "../fatal/thread_text.h"
#include "../util/proc.h"

namespace gmr {
namespace {

// Heap-allocated, never destroyed: a report may be written while the process
// exits and static destructors run.
struct Config {
  std::mutex mu;  // the destination; also one report at a time (g_text)
  std::string log_dir, service_name, node_version;
};

Config& C() {
  static Config* config = new Config;
  return *config;
}

// The text: static, so that formatting needs no allocation (running out of
// memory is one way to end up here).
char g_text[1 << 20];
std::atomic<unsigned> g_tmp_counter{0};

constexpr int kMaxSameSecond = 1000;  // as src/output.ts
constexpr const char* kMarker = "written by the native fallback because: ";

// "YYYY-MM-DDTHH:MM:SS.mmmZ", or with `compact` oslo's YYYYMMDDHHMMSS.
void WriteTime(SafeText* w, uint64_t unix_ms, bool compact) {
  time_t secs = time_t(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  const char* dash = compact ? "" : "-";
  w->Dec(uint64_t(tm.tm_year + 1900), 4).Str(dash).Dec(uint64_t(tm.tm_mon + 1), 2).Str(dash).Dec(uint64_t(tm.tm_mday), 2);
  if (!compact) w->Char('T');
  w->Dec(uint64_t(tm.tm_hour), 2).Str(compact ? "" : ":").Dec(uint64_t(tm.tm_min), 2).Str(compact ? "" : ":");
  w->Dec(uint64_t(tm.tm_sec), 2);
  if (!compact) w->Char('.').Dec(unix_ms % 1000, 3).Char('Z');
}

const char* Kind(const CapturedThread& t) {
  if (t.snapshot.tid == getpid()) return "main";
  if (t.snapshot.v8.isolate || t.unanswered_isolate || t.identity.thread_id > 0) return "worker";
  return t.snapshot.self ? "guru-meditation" : "other";
}

void WriteJsFrame(SafeText* w, const JsFrame& f) {
  w->Str("  at ").Str(f.function.empty() ? "<anonymous>" : f.function.c_str()).Str(" (");
  w->Str(f.file.empty() ? "<unknown>" : f.file.c_str());
  if (f.line > 0) {
    w->Char(':').Dec(f.line);
    if (f.column > 0) w->Char(':').Dec(f.column);
  }
  w->Str(")\n");
}

void WriteThread(SafeText* w, const CapturedThread& t) {
  const ThreadSnapshot& s = t.snapshot;
  w->Char('\n');
  WriteThreadHeading(w, s.tid, s.name.c_str(), Kind(t), false);
  w->Str("state = ").Str(ThreadStateName(s.os_state)).Char('\n');
  w->Str("cpu = user ").Dec(s.cpu_user_us / 1000).Str(" ms, system ").Dec(s.cpu_system_us / 1000).Str(" ms\n");
  // The interrupt's answer has lines and columns; the code map's sample,
  // taken when the thread could not answer, the functions' start lines.
  if (t.js.answered) {
    w->Str("JavaScript stack:\n");
    if (t.js.frames.empty()) w->Str("  (no frames)\n");
    for (const JsFrame& f : t.js.frames) WriteJsFrame(w, f);
  } else if (!t.sampled_js.empty()) {
    w->Str("JavaScript stack (from the code map: function start lines):\n");
    for (const JsFrame& f : t.sampled_js) WriteJsFrame(w, f);
  } else if (t.js_requested) {
    w->Str("JavaScript stack:\n  (the thread did not answer in time)\n");
  }
  w->Str("Native stack:\n");
  if (t.native.empty()) {
    const char* why = s.self ? "the thread that captured this report"
                      : !s.captured && !s.missing_reason.empty() ? s.missing_reason.c_str()
                                                                 : "no frames";
    w->Str("  (").Str(why).Str(")\n");
  }
  for (size_t i = 0; i < t.native.size(); i++) {
    const NativeFrame& n = t.native[i];
    FrameText f;
    f.pc = n.pc;
    f.found = !n.symbol.empty() || !n.module.empty();
    f.symbol = n.symbol.c_str();
    f.symbol_offset = n.symbol_offset;
    f.module = n.module.c_str();
    f.module_offset = n.module_offset;
    if (n.has_js) {
      f.js_function = n.js.function.c_str();
      f.js_file = n.js.file.c_str();
      f.js_line = n.js.line;
    }
    WriteFrameLine(w, i, t.native.size(), f);
  }
}

void Format(SafeText* w, const Capture& capture, const Trigger& trigger, const std::string& reason, const Config& c) {
  WriteBox(w, "Guru Meditation");
  for (int i = 0; i < 72; i++) w->Char('|');
  w->Str("\n\n").Str(kMarker).Str(reason.c_str()).Str("\n\n");
  WriteBox(w, "Package");
  w->Str("service name = ").Str(c.service_name.c_str()).Char('\n');
  w->Str("node = ").Str(c.node_version.c_str()).Char('\n');
  w->Str("pid = ").Dec(int64_t(getpid())).Char('\n');
  w->Str("generated at = ");
  WriteTime(w, capture.started_unix_ms, false);
  w->Str("\ntrigger = ").Str(trigger.kind.c_str());
  if (!trigger.detail.empty()) w->Char(' ').Str(trigger.detail.c_str());
  if (trigger.coalesced > 0) w->Str(" (").Dec(trigger.coalesced).Str(" more coalesced)");
  w->Str("\nwritten by = native fallback (text only: no configuration, green threads, processes or user sections)\n");
  WriteBox(w, "Threads");
  w->Dec(uint64_t(capture.threads.size())).Str(" threads");
  w->Str(" (capture: ").Dec(capture.total_us / 1000).Str(" ms)\n");
  if (capture.threads.empty()) w->Str("(the capture could not list the threads: /proc/self/task could not be read, as when no file descriptor is left)\n");
  if (capture.unopened_count > 0) {
    // What they hold is missing below: names, states, symbols.
    w->Str("(no file descriptor was free for ").Dec(uint64_t(capture.unopened_count));
    w->Str(capture.unopened_count == 1 ? " file" : " files").Str(" the capture reads:");
    for (const std::string& path : capture.unopened_files) w->Char(' ').Str(path.c_str());
    if (capture.unopened_files.size() < capture.unopened_count) w->Str(" ...");
    w->Str(")\n");
  }
  for (const CapturedThread& t : capture.threads) WriteThread(w, t);
  if (w->truncated()) w->Str("\n(report truncated)\n");
  w->Char('\n');
  WriteBox(w, "End of Guru Meditation Report");
}

// As every report file (kNewFileFlags). With no descriptor free, in the
// place of the spare (util/proc.h): closed with CloseForReport.
int CreateNew(const std::string& path) {
  return OpenForReport(path, kNewFileFlags, kNewFileMode);
}

// The text to a temporary file, then linked to its final name: the report
// appears complete or not at all (src/output.ts does the same). Returns the
// final path, or "" with `error` set.
std::string WriteLinked(const SafeText& text, const std::string& tmp, const std::string& dir, const std::string& base,
                        bool numbered, std::string* error) {
  int fd = CreateNew(tmp);
  if (fd < 0) {
    *error = strerror(errno);
    return "";
  }
  bool ok = text.WriteTo(fd);
  int saved = errno;
  CloseForReport(fd);
  std::string final;
  if (!ok) {
    *error = strerror(saved);
  } else {
    for (int i = 0; i < (numbered ? kMaxSameSecond : 1); i++) {
      std::string name = dir.empty() ? base : dir + "/" + (i == 0 ? base : base + "_" + std::to_string(i));
      if (link(tmp.c_str(), name.c_str()) == 0) {
        final = name;
        break;
      }
      if (errno != EEXIST) break;
    }
    if (final.empty()) *error = strerror(errno);
  }
  unlink(tmp.c_str());
  return final;
}

// A line to stderr with write(2): stdio may be what is broken.
void Say(const std::string& line) {
  for (size_t off = 0; off < line.size();) {
    ssize_t n = write(2, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += size_t(n);
  }
}

}  // namespace

void ConfigureFallbackReport(const std::string& log_dir, const std::string& service_name,
                             const std::string& node_version) {
  Config& c = C();
  std::lock_guard<std::mutex> lock(c.mu);
  c.log_dir = log_dir;
  c.service_name = service_name;
  c.node_version = node_version;
}

std::string WriteFallbackReport(const Capture& capture, const Trigger& trigger, const std::string& reason) {
  Config& c = C();
  std::lock_guard<std::mutex> lock(c.mu);
  SafeText text(g_text, sizeof g_text - 256);
  Format(&text, capture, trigger, reason, c);
  std::string tag = std::to_string(getpid()) + "." + std::to_string(++g_tmp_counter);
  std::string error;
  // `gmr <pid>` waits for the file it named (attach.h checked the name).
  if (!trigger.out_path.empty()) {
    std::string path = WriteLinked(text, trigger.out_path + "." + tag + ".tmp", "", trigger.out_path, false, &error);
    if (!path.empty()) {
      Say("guru-meditation: " + reason + "; the native fallback wrote the report to " + path + "\n");
      return path;
    }
    Say("guru-meditation: cannot write the report gmr asked for to " + trigger.out_path + " (" + error + ")\n");
  }
  if (!c.log_dir.empty()) {
    char stamp[32];
    SafeText s(stamp, sizeof stamp - 1);
    WriteTime(&s, capture.started_unix_ms, true);
    stamp[s.size()] = '\0';
    std::string base = c.service_name + "_gurumeditation_" + stamp;
    std::string tmp = c.log_dir + "/." + base + "." + tag + ".fallback.tmp";
    std::string path = WriteLinked(text, tmp, c.log_dir, base, true, &error);
    if (!path.empty()) {
      Say("guru-meditation: " + reason + "; the native fallback wrote the report to " + path + "\n");
      return path;
    }
    Say("guru-meditation: cannot write the report to " + c.log_dir + " (" + error + "); writing it to stderr instead\n");
  }
  text.WriteTo(2);
  return "";
}

}  // namespace gmr
