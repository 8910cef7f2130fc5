// Which Node.js thread an isolate belongs to: its worker_threads `threadId`
// (0 on the main thread) and, where Node knows it (22 and later), the name
// given to its Worker. Read once per isolate, on its own thread.
#pragma once

#include <string>

namespace v8 {
class Isolate;
}

namespace gmr {

struct ThreadIdentity {
  int thread_id = -1;        // -1: not known (yet)
  std::string worker_name;   // "" when unnamed or not known
};

// On the isolate's thread, in JavaScript-safe context (addon load, an
// interrupt): runs a tiny script in the current context. Never throws into
// the caller; returns thread_id -1 when the context has no `process` (a vm
// context) or the script fails.
ThreadIdentity ReadThreadIdentity(v8::Isolate* isolate);

}  // namespace gmr
