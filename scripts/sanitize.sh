#!/usr/bin/env bash
# The addon built with AddressSanitizer and UndefinedBehaviorSanitizer, and
# the tests that drive its threads and signal handlers run over it. Node
# itself is not instrumented: the ASan runtime is preloaded into every node
# process the tests start, and only the addon's code is checked. Fails when
# any sanitizer reported anything.
#   scripts/sanitize.sh [test files...]   (default: the multithread tests)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TESTS=("$@")
[ ${#TESTS[@]} -gt 0 ] || TESTS=(test/threads.test.js test/signal.test.js test/native-block.test.js test/signal-interplay.test.js test/two-copies.test.js test/eintr.test.js test/green-threads.test.js test/stress/churn.test.js test/deadlock.test.js test/stopped-thread.test.js test/reporter-fallback.test.js test/reporter-exit.test.js test/late-capture.test.js test/first-contact.test.js test/api-worker-exit.test.js)

WORK=$(mktemp -d /tmp/gmr-sanitize.XXXXXX)
BINARY=build/Release/guru_meditation.node
restore () {
  if [ -f "$WORK/normal.node" ]; then cp "$WORK/normal.node" "$BINARY"; fi
  rm -rf "$WORK"
}
trap restore EXIT

# Built apart, so the normal build is left as it is.
cp -r binding.gyp native "$WORK/"
ln -s "$ROOT/node_modules" "$WORK/node_modules"
# GMR_SANITIZE=0: the test hooks alone, no sanitizer (for tests whose
# signals ASan would take over: test/fatal-signal.test.js).
SANITIZE=${GMR_SANITIZE:-1}
FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize=vptr -g -O1"
LINK="-fsanitize=address,undefined"
[ "$SANITIZE" = 1 ] || FLAGS="" LINK=""
(cd "$WORK" && GMR_BUILD_TEST_HOOKS=1 CFLAGS="$FLAGS" CXXFLAGS="$FLAGS" LDFLAGS="$LINK" \
  npx --no-install node-gyp rebuild -j 2 >"$WORK/build.log" 2>&1) || { cat "$WORK/build.log"; exit 1; }
cp "$BINARY" "$WORK/normal.node"
cp "$WORK/build/Release/guru_meditation.node" "$BINARY"

LOGS="$WORK/logs"
mkdir -p "$LOGS"
ASAN_LIB=$(${CXX:-g++} -print-file-name=libasan.so)
[ "$SANITIZE" = 1 ] || ASAN_LIB=""
# Node's own allocations are not instrumented, and V8 frees memory the
# addon never saw: leaks are not checked; the first error of a process is
# reported and ends it.
export ASAN_OPTIONS="detect_leaks=0:log_path=$LOGS/asan:allow_user_segv_handler=1:handle_segv=0:handle_abort=1:verify_asan_link_order=0"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$LOGS/ubsan"
# The stress tier: exits during a report (npm test runs 20).
export GMR_EXIT_RUNS=${GMR_EXIT_RUNS:-500}
status=0
LD_PRELOAD="$ASAN_LIB" npx --no-install tap --jobs=1 --timeout=300 "${TESTS[@]}" || status=$?

reports=$(find "$LOGS" -type f | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "sanitize: $reports sanitizer report(s):"
  for f in "$LOGS"/*; do echo "=== $f"; cat "$f"; done
  exit 1
fi
[ "$status" -eq 0 ] || { echo "sanitize: the tests failed under the sanitizers"; exit "$status"; }
[ "$SANITIZE" = 1 ] && echo "sanitize: no sanitizer report" || echo "sanitize: the tests passed with the test hooks (no sanitizer)"
