#!/usr/bin/env bash
# The README's test command: installs what is needed, builds with CMake, runs
# every test with ctest (in parallel: each test owns its ports), then builds the
# same sources with meson so that build does not rot either.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
bash scripts/install-deps.sh test
bash scripts/build.sh test
python3 tests/check_build_lists.py "$top"
(cd build && ctest --output-on-failure --parallel "$(nproc)" --timeout 300)
# meson: the same sources, built and unit-tested in their own tree.
meson setup build-meson --reconfigure >/dev/null 2>&1 || meson setup build-meson >/dev/null
ninja -C build-meson >/dev/null
meson test -C build-meson --print-errorlogs | tail -n 3
