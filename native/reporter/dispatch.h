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

// On the main thread, when a report it took from its event loop is done:
// written (why_not empty), or not, and why: then it is handed back.
void MainReportEnded(const std::string& why_not);

// At process exit, on the main thread: a report it took and had not written
// yet (it awaited its sections) never will be; the native fallback writes
// it. False when there was none.
bool CutShortMainReport();

// The watchdog's Deliver for triggered reports.
bool DispatchReport(std::unique_ptr<Capture> capture, const Trigger& trigger);

}  // namespace gmr
