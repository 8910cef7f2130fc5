// Formats triggered reports in a Node.js environment created on demand, on a
// thread of its own: between reports nothing of it exists (no idle worker,
// no memory), and a stuck main thread cannot delay it. The environment runs
// the TypeScript reporter (dist/reporter-env.js, from src/reporter-env.ts), which takes the capture with
// TakeReporterJob and writes the report.
//
// The capture stays here until the job is finished: when the environment
// cannot start, or fails after launch (an exception in the formatter, out of
// memory, torn down, cut short by process exit), the native fallback
// (fallback_report.h) writes it. Every launched job ends in a report.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "../watchdog/watchdog.h"

namespace node {
class Environment;
}

namespace gmr {

// At process exit, how long the exit hook waits for triggered reports: one
// being written is stopped at once and written by the fallback; one being
// captured is finished by the fallback; the bound covers an environment
// still being created on a starved machine. Past it, an environment that
// has not stopped cannot be left running while the platform goes: the
// fallback writes its report and the process ends with _exit(1).
constexpr int kReporterExitBoundMs = 2000;

// On the main thread at setup: the platform to create environments on, the
// script they run, and whether Node has its built-in startup snapshot.
void ConfigureReporterEnv(node::Environment* main_env, const std::string& script, bool builtin_snapshot);
// `schedule` must arrange for ReopenReporterEnv to run on the main thread
// when it next can (see StopAtExit); nullptr once it no longer can.
void ConfigureReporterReopen(std::function<void()> schedule);
void ReopenReporterEnv();
// The data the script needs (JSON from the TypeScript side).
void SetReporterData(const std::string& json);
// The same, for a thread other than the main one that writes a report
// (generateReport on a worker): "" before setup.
std::string ReporterData();

// Starts an environment for this capture. Returns "" or why none could
// start, as the fallback's reason (the caller then writes the fallback).
std::string LaunchReporterEnv(std::shared_ptr<const Capture> capture, const Trigger& trigger);

// In the reporter environment, once: the capture it was started for and the
// reporter data. False when there is none (the script was loaded otherwise).
bool TakeReporterJob(std::shared_ptr<const Capture>* capture, Trigger* trigger, std::string* data);

// In the reporter environment, when the script is done with its job:
// `error` is "" when the report is written, else why not (the fallback then
// writes it). The next trigger may go.
void FinishReporterJob(const std::string& error);

// In the reporter environment, when the report is written: the environment
// ends even if something left a handle open in it.
void EndReporterEnv();

}  // namespace gmr
