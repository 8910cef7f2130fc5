{
  "targets": [
    {
      "target_name": "guru_meditation",
      "sources": [
        "native/addon.cc",
        "native/capture/blocked_thread.cc",
        "native/capture/capture.cc",
        "native/capture/js_stacks.cc",
        "native/capture/thread_snapshot.cc",
        "native/codemap/code_map.cc",
        "native/convert.cc",
        "native/green/loop_walk.cc",
        "native/green/promise_tracker.cc",
        "native/green/timer_tracker.cc",
        "native/isolates/registry.cc",
        "native/isolates/switches.cc",
        "native/isolates/thread_identity.cc",
        "native/memory/heap_figures.cc",
        "native/fatal/fatal_report.cc",
        "native/fatal/fatal_signal.cc",
        "native/fatal/thread_text.cc",
        "native/reporter/dispatch.cc",
        "native/reporter/fallback_report.cc",
        "native/reporter/reporter_env.cc",
        "native/symbolize/symbolize.cc",
        "native/unwind/unwind.cc",
        "native/unwind/eh_frame.cc",
        "native/util/proc.cc",
        "native/util/threads.cc",
        "native/util/safe_read.cc",
        "native/util/signal_name.cc",
        "native/util/test_hooks.cc",
        "native/watchdog/attach.cc",
        "native/watchdog/stall.cc",
        "native/watchdog/watchdog.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # An exception thrown while an environment is being stopped (the
      # reporter's, at process exit) is dropped, not a fatal error.
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      # Test-only hooks (native/util/test_hooks.h): off in every shipped
      # binary; `GMR_BUILD_TEST_HOOKS=1 node-gyp rebuild` or scripts/sanitize.sh.
      "conditions": [["'<!(node -p \"process.env.GMR_BUILD_TEST_HOOKS || ''\")'=='1'", {"defines": ["GMR_TEST_HOOKS"]}]],
      "cflags_cc": ["-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"],
      "libraries": ["-ldl"],
      # Every symbol bound at load: a binary for another Node fails to load
      # (an error the loader reports) instead of ending the process later.
      # Never unloaded: Node unloads an addon a worker loaded when the worker
      # ends, and the watchdog, the signal handlers and the tables they read
      # live here for the process's life.
      "ldflags": ["-Wl,-z,now", "-Wl,-z,nodelete"]
    }
  ]
}
