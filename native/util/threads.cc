#include "threads.h"

#include <pthread.h>

namespace gmr {

int StartThread(void* (*main)(void*), void* arg, size_t stack_bytes, const sigset_t& mask) {
  // A new thread inherits its creator's mask: set around the creation.
  sigset_t old;
  pthread_sigmask(SIG_SETMASK, &mask, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, main, arg);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return rc;
}

int StartQuietThread(void* (*main)(void*), void* arg, size_t stack_bytes) {
  sigset_t all;
  sigfillset(&all);
  return StartThread(main, arg, stack_bytes, all);
}

}  // namespace gmr
