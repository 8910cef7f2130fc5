// The native watchdog: one thread that waits for a trigger (the report
// signal, the trigger file, a request from JavaScript), captures every thread
// and hands the capture to whoever formats reports. It never needs an event
// loop to notice a trigger or to capture, so a stuck JS thread cannot stop it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "../capture/capture.h"

namespace gmr {

struct Trigger {
  std::string kind;    // "signal", "file", "api", "cli" (gmr <pid>: attach.h)
  std::string detail;  // "SIGUSR2", the trigger file's path, ...
  int coalesced = 0;   // triggers folded into this report while one was in flight
  std::string out_path;  // "cli": where the report goes instead
  std::string format;    // "cli": "text", "json", or "" for the configured one
  // Set when the main thread took the report but could not write it, and
  // handed it to a reporter environment (reporter/dispatch.cc): why.
  std::string main_failure = {};
  // Set when a reporter environment writes it because the main thread did
  // not pick it up (reporter/dispatch.cc): why, and how long it was given.
  std::string main_not_picked_up = {};
};

// Called on the watchdog thread with a finished capture. Returns false when
// nobody could take it (the reporter is gone).
using Deliver = std::function<bool(std::unique_ptr<Capture>, const Trigger&)>;

struct WatchdogConfig {
  int report_signal = 0;        // 0: none
  std::string trigger_file;     // "": none
  int poll_interval_ms = 0;     // mtime polling of trigger_file; 0: inotify only
  int stall_threshold_ms = 0;   // report an event loop that does not turn for this long; 0: off
  CaptureSettings capture;
};

// Starts the thread once; later calls update the configuration. Returns ""
// or an error message.
std::string ConfigureWatchdog(const WatchdogConfig& config);

// Re-installs the report signal handler in front of whatever replaced it
// (libuv does when the application listens on the same signal). The
// replaced handler is chained to.
void ReclaimReportSignal();

// The reporter that writes triggered reports; nullptr detaches it.
// `watch`, called at each wake of the watchdog while a report is in flight,
// returns the ms until it wants to be called again (-1: not again): the
// reporter's own deadline for a report it handed on (reporter/dispatch.h,
// TakeBackStuckMainReport).
void SetReporter(Deliver deliver, int (*watch)() = nullptr);
// The reporter finished the report it was given; the next trigger may go.
void ReportDone();

// At process exit: waits, until `deadline`, for every report signal caught
// so far to be read and its report written (or handed to the native
// fallback). False when one is still in flight at the deadline.
bool WaitForTriggeredReports(std::chrono::steady_clock::time_point deadline);

// An API report: captured on the watchdog, delivered to `deliver`.
void RequestCapture(CaptureSettings settings, Deliver deliver);

// A worker came online: the watchdog meets the threads it has not met yet
// (MeetNewIsolates), again until all are met, for a bounded time.
void RequestMeetNewIsolates();

int ReportSignal();

}  // namespace gmr
