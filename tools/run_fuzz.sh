#!/usr/bin/env bash
# Bounded libFuzzer run of the file parsers (tests/fuzz/fuzz_*.cpp), as part of the
# test command. Builds a separate clang tree (build/fuzz, ASan+UBSan+libFuzzer,
# only the fuzz targets), then runs each target on a copy of its committed seed
# corpus (tests/fuzz/corpus/<name>/) for its share of the time budget, with the
# flags of tests/fuzz/<name>.options when there is one.
#
# Usage: tools/run_fuzz.sh [total_seconds]     (default 60, or $FUZZ_TIME)
# Exit: 0 when every target ran clean or fuzzing is unavailable here (clang,
# libFuzzer or clang's OpenMP missing: a message says which); 1 when a target
# crashed (the reproducer is under build/fuzz/artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL="${1:-${FUZZ_TIME:-60}}"
BUILD=build/fuzz
JOBS="${JOBS:-$(nproc)}"

skip() {
  echo "run_fuzz: SKIPPED: $*"
  exit 0
}

command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1 ||
  skip "clang not found (apt-get install clang libclang-rt-14-dev libomp-dev)"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe/f.cpp"
clang++ -fsanitize=fuzzer,address,undefined "$probe/f.cpp" -o "$probe/f" >/dev/null 2>&1 ||
  skip "clang has no libFuzzer runtime (apt-get install libclang-rt-14-dev)"
printf 'int main() { int s = 0;\n#pragma omp parallel for reduction(+ : s)\n for (int i = 0; i < 4; ++i) s += i;\n return s != 6; }\n' >"$probe/o.cpp"
clang++ -fopenmp "$probe/o.cpp" -o "$probe/o" >/dev/null 2>&1 ||
  skip "clang cannot build OpenMP code (apt-get install libomp-dev)"

echo "run_fuzz: building fuzz targets with clang in $BUILD"
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DT2V_FUZZ=ON -DT2V_CUDA=OFF -DT2V_WERROR=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD.configure.log" 2>&1 || {
  cat "$BUILD.configure.log"
  echo "run_fuzz: configuring the fuzz build failed"
  exit 1
}
cmake --build "$BUILD" --target fuzz_all -j"$JOBS"

mapfile -t targets < <(find "$BUILD/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort)
[ "${#targets[@]}" -gt 0 ] || { echo "run_fuzz: no fuzz targets were built"; exit 1; }
per=$((TOTAL / ${#targets[@]}))
[ "$per" -ge 1 ] || per=1

# Regression inputs too large to keep in git or to fuzz from (they would raise libFuzzer's
# max_len for every mutation), generated here and each run once under a per-input time
# limit: a parser that turned quadratic again fails this step (docs/bad_inputs.md #2-9, #78).
REGRESS_TIMEOUT="${REGRESS_TIMEOUT:-20}"
# A safetensors file of $1 zero-size tensors ({"t0": {"dtype": "F32", "shape": [0],
# "data_offsets": [0, 0]}, ...}): 100,000 of them are a 6.6 MB header.
many_tensors() {
  local n=$1 out=$2 len pad
  awk -v n="$n" 'BEGIN { printf "{"; for (i = 0; i < n; i++) { if (i) printf ","; printf "\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}", i }; printf "}" }' >"$out.json"
  len=$(stat -c %s "$out.json")
  pad=$(((8 - len % 8) % 8))
  printf '%*s' "$pad" '' >>"$out.json"
  len=$((len + pad))
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((len & 255)) $((len >> 8 & 255)) $((len >> 16 & 255)) $((len >> 24 & 255)))" >"$out"
  cat "$out.json" >>"$out"
  rm -f "$out.json"
}
mkdir -p "$BUILD/regress/safetensors"
many_tensors 100000 "$BUILD/regress/safetensors/zero_size_100k.safetensors"

failed=0
mkdir -p "$BUILD/artifacts"
for t in "${targets[@]}"; do
  name=$(basename "$t")
  regress="$BUILD/regress/${name#fuzz_}"
  if [ -d "$regress" ]; then
    for input in "$regress"/*; do
      echo "run_fuzz: $name on $(basename "$input") ($(stat -c %s "$input") bytes, limit ${REGRESS_TIMEOUT}s)"
      start=$(date +%s%N)
      if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$t" -timeout="$REGRESS_TIMEOUT" -rss_limit_mb=4096 "$input" >"$BUILD/$name.regress.log" 2>&1; then
        tail -n 30 "$BUILD/$name.regress.log"
        echo "run_fuzz: $name FAILED on $input (over ${REGRESS_TIMEOUT}s, or a crash)"
        failed=1
      else
        echo "run_fuzz: $name ok on $(basename "$input") in $((($(date +%s%N) - start) / 1000000)) ms"
      fi
    done
  fi
  seeds="tests/fuzz/corpus/${name#fuzz_}"
  work="$BUILD/corpus/${name#fuzz_}"  # grows here; the committed seeds stay as they are
  mkdir -p "$work"
  dict=()
  [ -f "tests/fuzz/${name#fuzz_}.dict" ] && dict=(-dict="tests/fuzz/${name#fuzz_}.dict")
  # Per-target libFuzzer flags (a per-input time limit, the largest input), after the defaults so they win.
  opts=()
  [ -f "tests/fuzz/${name#fuzz_}.options" ] && read -r -a opts <"tests/fuzz/${name#fuzz_}.options"
  echo "run_fuzz: $name for ${per}s (seeds: $seeds)"
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$t" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" "${opts[@]}" \
    -artifact_prefix="$BUILD/artifacts/$name-" "$work" "$seeds" >"$BUILD/$name.log" 2>&1; then
    tail -n 60 "$BUILD/$name.log"
    echo "run_fuzz: $name FAILED; reproducer: $(ls -t "$BUILD/artifacts/$name-"* 2>/dev/null | head -1)"
    echo "run_fuzz: reproduce with: $t <file>"
    failed=1
  else
    grep -E '^stat::number_of_executed_units|^stat::new_units_added|^stat::peak_rss_mb' "$BUILD/$name.log" | tr '\n' ' '
    echo
    echo "run_fuzz: $name ok"
  fi
done
exit "$failed"
