#!/usr/bin/env bash
# Sets up, builds and runs every test: the README's test command and what CI runs.
# Usage: tools/run_tests.sh            (build dir: build/test; JOBS=N to override parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."

./setup.sh --test-tools
JOBS="${JOBS:-$(nproc)}"
BUILD=build/test
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DT2V_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"$JOBS"

# Bounded fuzzing of the file parsers (skips itself where clang/libFuzzer are missing).
if [ -x tools/run_fuzz.sh ]; then
  tools/run_fuzz.sh
fi

# ctest runs two test binaries at once on two cores: OpenMP threads must sleep,
# not spin, while they wait, or an oversubscribed run slows down many times.
export OMP_WAIT_POLICY=passive
# OpenBLAS's idle workers likewise sleep at once instead of spinning on sched_yield
# (the t2v program sets this for itself; the test binaries load OpenBLAS directly).
export OPENBLAS_THREAD_TIMEOUT=4
# OpenBLAS falls back to its slowest kernels on VMs that hide the CPU model
# (app/main.cpp does the same for the t2v program).
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512bw /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi

# ctest's summary is the last thing printed.
ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" --timeout 600
