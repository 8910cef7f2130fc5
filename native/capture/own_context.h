// The context a thread's own scripts run in, whichever context it is in
// when an interrupt comes.
#pragma once

#include <node.h>
#include <v8.h>

namespace gmr {

// On the isolate's thread: the main context of the Node environment whose
// context is current, or an empty handle (none is current, or it belongs to
// no environment). A thread busy inside a vm context has that context
// current: its globals are the application's sandbox, which the library's
// scripts must neither read (a getter there is the application's code) nor
// change, and where `process` and the timers may not even exist.
inline v8::Local<v8::Context> OwnContext(v8::Isolate* isolate) {
  if (!isolate->InContext()) return {};
  node::Environment* env = node::GetCurrentEnvironment(isolate->GetCurrentContext());
  if (!env) return {};
  return node::GetMainContext(env);
}

}  // namespace gmr
