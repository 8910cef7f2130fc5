// Who writes a triggered report: the main thread when it is free (it answers
// within a few milliseconds, and has the live configuration and the user
// sections) or busy in JavaScript (interrupted, it writes the report between
// two of its operations), else a reporter environment created for the report
// (reporter_env.h), which needs nothing from the blocked thread.
#pragma once

#include <napi.h>

#include <memory>

#include "../watchdog/watchdog.h"

namespace gmr {

// On the main thread: `on_report(capture, fromInterrupt)` is called there for
// a triggered report it picks up in time, from its event loop
// (fromInterrupt false) or, when it is busy running JavaScript, from an
// interrupt (true: the report must be written synchronously). It must call
// ReportDone when written. The channel does not keep the loop alive.
void AttachMainReporter(Napi::Env env, Napi::Function on_report, int pickup_ms);

// On the main thread: the report it took is written (or failed, and said
// so). The next trigger may go.
void MainReportDone();

// At process exit, on the main thread: a report it took and had not written
// yet (it awaited its sections) never will be; the native fallback writes
// it. False when there was none.
bool CutShortMainReport();

// On the main thread, around its first load of the report's modules: an
// interrupt then landing inside that load would find them half
// initialized, so while held the busy main thread does not take a report
// (the reporter environment writes it after the pickup time).
void HoldInterruptReports(bool hold);

// The watchdog's Deliver for triggered reports.
bool DispatchReport(std::unique_ptr<Capture> capture, const Trigger& trigger);

}  // namespace gmr
