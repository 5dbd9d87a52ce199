#!/usr/bin/env bash
# Sets up, builds and runs every test: the README's test command and what CI runs.
# Usage: tools/run_tests.sh            (build dir: build/test; JOBS=N to override parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."

./setup.sh
JOBS="${JOBS:-$(nproc)}"
BUILD=build/test
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DT2V_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"$JOBS"

# Bounded fuzzing of the file parsers (skips itself where clang/libFuzzer are missing).
if [ -x tools/run_fuzz.sh ]; then
  tools/run_fuzz.sh
fi

# ctest's summary is the last thing printed.
ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 600
