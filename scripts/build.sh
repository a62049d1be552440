#!/usr/bin/env bash
# Configures and builds portier with CMake (the build the README uses) into
# ./build. `build.sh demo` (scripts/demo.sh) builds the programs and the plugin:
# a new build tree is configured without the tests, so GoogleTest need not be
# installed. `build.sh` or `build.sh test` (scripts/test.sh) builds the tests too.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
what=${1:-test}
options=()
if [ ! -f build/CMakeCache.txt ]; then
  options+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
  command -v ninja >/dev/null && options+=(-G Ninja)
  [ "$what" = demo ] && options+=(-DBUILD_TESTING=OFF)
fi
[ "$what" = test ] && options+=(-DBUILD_TESTING=ON)
if [ ! -f build/CMakeCache.txt ] || [ "$what" = test ]; then
  cmake -S . -B build ${options[@]+"${options[@]}"} >/dev/null
fi
cmake --build build --parallel "$(nproc)"
