#!/usr/bin/env bash
# Configures and builds portier with CMake (the build the README uses) into
# ./build. Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build --parallel "$(nproc)"
