// Who writes a triggered report: the main thread when it is free (it answers
// within a few milliseconds, and has the live configuration and the user
// sections) or busy in JavaScript (interrupted, it writes the report between
// two of its operations), else a reporter environment created for the report
// (reporter_env.h), which needs nothing from the blocked thread.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "../watchdog/watchdog.h"

namespace gmr {

// On the main thread: `on_report(capture, fromInterrupt)` is called there for
// a triggered report it picks up in time, from its event loop
// (fromInterrupt false) or, when it is busy running JavaScript, from an
// interrupt (true: the report must be written synchronously). From the event
// loop it must call MainReportEnded once done; from an interrupt it returns
// true when written, or why it could not (a string). A report the main
// thread could not write is written by a reporter environment, told why.
// The channel does not keep the loop alive.
void AttachMainReporter(Napi::Env env, Napi::Function on_report, int pickup_ms);

// On the main thread, when the report `job` it took from its event loop
// (on_report's capture.job) is done: written (why_not empty), or not, and
// why: then it is handed back. A job taken back meanwhile is left alone.
void MainReportEnded(uint64_t job, const std::string& why_not);

// The time the event loop has to finish a report it took, user sections
// included (sectionTimeout and a margin).
void SetMainReportTimeout(int write_ms);

// On the main thread, before it writes the report file of `job`: true when
// the report is still its own to write, and from then on it is; false when
// the watchdog took it back (TakeBackStuckMainReport): then it writes none.
bool CommitMainReport(uint64_t job);

// The watchdog, while a report is in flight: a report the event loop took
// and has not committed to writing within its time (its loop got stuck
// while it awaited a section, where its own timers never fire) is taken
// back and written by a reporter environment, told why. Returns the ms
// until that deadline, -1 when there is none to watch.
int TakeBackStuckMainReport();

// At process exit, on the main thread: a report it took and had not written
// yet (it awaited its sections) never will be; the native fallback writes
// it. False when there was none.
bool CutShortMainReport();

// The watchdog's Deliver for triggered reports.
bool DispatchReport(std::unique_ptr<Capture> capture, const Trigger& trigger);

}  // namespace gmr
