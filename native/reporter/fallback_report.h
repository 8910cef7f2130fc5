// The report written natively when the reporter environment cannot write it:
// it could not start (no descriptor, no thread, the process exiting), or it
// failed after launch (an exception in the formatter, its isolate out of
// memory, torn down, cut short by process exit). A text report of what was
// captured (every thread's state, native frames, the JavaScript frames the
// capture got, the trigger) headed by why it was written so, to the file
// the TypeScript path would have used, else to stderr (fd 2 stays open when
// no descriptor is left). The JSON report remains the normal path; this one
// is text and says so.
#pragma once

#include <string>

#include "../watchdog/watchdog.h"

namespace gmr {

// On the main thread at set-up (with the fatal-signal report's settings:
// the same destination): where reports go ("" log_dir: stderr) and what the
// header names.
void ConfigureFallbackReport(const std::string& log_dir, const std::string& service_name,
                             const std::string& node_version);

// Any thread but a signal handler's; one report at a time. Writes the
// report; says on stderr where it went when that was a file. Returns the
// file's path, or "" for stderr.
std::string WriteFallbackReport(const Capture& capture, const Trigger& trigger, const std::string& reason);

}  // namespace gmr
