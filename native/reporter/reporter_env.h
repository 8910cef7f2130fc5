// Formats triggered reports in a Node.js environment created on demand, on a
// thread of its own: between reports nothing of it exists (no idle worker,
// no memory), and a stuck main thread cannot delay it. The environment runs
// the TypeScript reporter (dist/reporter.js), which takes the capture with
// TakeReporterJob and writes the report.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "../watchdog/watchdog.h"

namespace node {
class Environment;
}

namespace gmr {

// On the main thread at setup: the platform to create environments on and
// the script they run.
void ConfigureReporterEnv(node::Environment* main_env, const std::string& script);
// `schedule` must arrange for ReopenReporterEnv to run on the main thread
// when it next can (see StopAtExit); nullptr once it no longer can.
void ConfigureReporterReopen(std::function<void()> schedule);
void ReopenReporterEnv();
// The data the script needs (JSON from the TypeScript side).
void SetReporterData(const std::string& json);

// Starts an environment for this capture, which it takes. Returns "" or why
// none could start (the capture is left to the caller then).
std::string LaunchReporterEnv(std::unique_ptr<Capture>* capture, const Trigger& trigger);

// In the reporter environment, once: the capture it was started for and the
// reporter data. False when there is none (the script was loaded otherwise).
bool TakeReporterJob(std::unique_ptr<Capture>* capture, Trigger* trigger, std::string* data);

// In the reporter environment, when the report is written: the environment
// ends even if something left a handle open in it.
void EndReporterEnv();

}  // namespace gmr
