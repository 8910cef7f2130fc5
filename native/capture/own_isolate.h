// Which isolate the calling thread runs JavaScript on, from a signal handler.
#pragma once

#include <v8.h>

namespace gmr {

// Async-signal-safe: the isolate the calling thread runs, or nullptr.
// V8 makes an isolate current on threads that only work for it too (Node
// 24's background compile and GC threads), and on its own thread while it
// disposes of it. The thread that runs it has it entered (IsInUse) and
// holds its lock: Node takes a v8::Locker on the main thread, on each
// worker and in our reporter environment. All three are reads of a
// thread-local and of plain fields; IsLocked may also give the thread its
// V8 thread id, one atomic increment. No allocation, no lock.
inline v8::Isolate* IsolateRunningHere() {
  v8::Isolate* isolate = v8::Isolate::TryGetCurrent();
  if (!isolate || !isolate->IsInUse() || !v8::Locker::IsLocked(isolate)) return nullptr;
  return isolate;
}

}  // namespace gmr
