// Which Node.js thread an isolate belongs to: its worker_threads `threadId`
// (0 on the main thread) and, where Node knows it (22 and later), the name
// given to its Worker. Read once per isolate, on its own thread.
#pragma once

#include <string>

namespace v8 {
class Isolate;
}

namespace gmr {

// thread_id of a worker met while it still bootstraps: it cannot tell yet.
constexpr int kIdentityNotYet = -2;

struct ThreadIdentity {
  int thread_id = -1;        // -1: not known; kIdentityNotYet
  std::string worker_name;   // "" when unnamed or not known
  // A worker's old-generation limit (its resourceLimits), in MB: what its
  // heap is near the end of; 0 when not known (the main thread's is its
  // --max-old-space-size, which the TypeScript side reads).
  double max_old_generation_mb = 0;
};

// On the isolate's thread, where JavaScript may run (addon load, a V8
// interrupt; not node::RequestInterrupt's callbacks): runs a tiny script in
// the main context of the thread's Node environment (never in a vm context
// the thread may be running). Never throws into the caller. thread_id is
// kIdentityNotYet when that context cannot load modules yet (a worker still
// bootstrapping), -1 when the script failed or no environment is current.
ThreadIdentity ReadThreadIdentity(v8::Isolate* isolate);

}  // namespace gmr
