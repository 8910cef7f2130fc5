// Captures as plain JavaScript objects, for the TypeScript side to format.
#pragma once

#include <napi.h>

#include <string>

#include "capture/capture.h"
#include "watchdog/watchdog.h"

namespace gmr {

Napi::Object CaptureToJs(Napi::Env env, const Capture& capture, const Trigger& trigger);


}  // namespace gmr
