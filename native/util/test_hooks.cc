#include "test_hooks.h"

#ifdef GMR_TEST_HOOKS
#include <time.h>

#include <cstdlib>
#include <cstring>

namespace gmr {
namespace {

struct Hook {
  char name[48];
  long value;
};
constexpr int kMaxHooks = 16;
Hook g_hooks[kMaxHooks];
int g_hook_count = 0;

}  // namespace

void LoadTestHooks() {
  static bool loaded = false;
  if (loaded) return;
  loaded = true;
  const char* spec = getenv("GMR_TEST_HOOKS");
  if (!spec) return;
  while (*spec && g_hook_count < kMaxHooks) {
    const char* end = strchr(spec, ',');
    if (!end) end = spec + strlen(spec);
    const char* eq = static_cast<const char*>(memchr(spec, '=', end - spec));
    size_t name_len = (eq ? eq : end) - spec;
    if (name_len > 0 && name_len < sizeof g_hooks[0].name) {
      Hook& h = g_hooks[g_hook_count++];
      memcpy(h.name, spec, name_len);
      h.name[name_len] = '\0';
      h.value = eq ? strtol(eq + 1, nullptr, 10) : 1;
    }
    spec = *end ? end + 1 : end;
  }
}

long TestHook(const char* name) {
  for (int i = 0; i < g_hook_count; i++)
    if (strcmp(g_hooks[i].name, name) == 0) return g_hooks[i].value;
  return 0;
}

void TestSleepMs(long ms) {
  if (ms <= 0) return;
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

}  // namespace gmr
#endif
