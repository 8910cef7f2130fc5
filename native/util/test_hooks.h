// Test-only timing and failure injection. Compiled in only when
// GMR_TEST_HOOKS is defined (binding.gyp defines it when the build runs with
// GMR_BUILD_TEST_HOOKS=1, as scripts/sanitize.sh does); in a release build
// every hook is the constant 0 and costs nothing. Tests ask for hooks with the environment variable
// GMR_TEST_HOOKS="name=value,name2" (a bare name is 1), read once when the
// addon loads, and check `addon.info().testHooks` to know the build has them.
#pragma once

namespace gmr {

#ifdef GMR_TEST_HOOKS
constexpr bool kTestHooks = true;
// Parses GMR_TEST_HOOKS into a fixed table. Called once, at load.
void LoadTestHooks();
// Async-signal-safe: a lookup in the fixed table, no allocation or lock.
// The hook's value, or 0 when it is not set.
long TestHook(const char* name);
// Async-signal-safe: sleeps `ms` milliseconds with nanosleep (a
// widened window), when ms > 0.
void TestSleepMs(long ms);
#else
constexpr bool kTestHooks = false;
inline void LoadTestHooks() {}
constexpr long TestHook(const char*) { return 0; }
inline void TestSleepMs(long) {}
#endif

}  // namespace gmr
