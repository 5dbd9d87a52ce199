#!/usr/bin/env bash
# One device call: run the GPU tests, compute-sanitizer memcheck and the
# benchmarks from the bundle made by tools/gpu/bundle.sh, writing logs to $OUT.
# Run from the repository root on the GPU machine, after tools/gpu/bundle.sh here:
#   device run: command "bash tools/gpu/run.sh", carry [".gpu"], timeout_s 600
#   STEPS="tests memcheck" bash tools/gpu/run.sh   # at most 270 + 170 s, within one 600 s device call
#   STEPS="bench compare" bash tools/gpu/run.sh    # at most 140 + 300 s
#   STEPS="tests" bash tools/gpu/run.sh   # a subset: tests, memcheck, bench, compare
# Logs: $OUT/{env,test_cuda,memcheck,bench,compare}.log, $OUT/test_cuda.xml, compare.json, summary.txt.
# The last lines printed are the summary (the device reply carries the tail).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$root/out/gpu}
mkdir -p "$OUT"
steps=${STEPS:-"tests memcheck bench compare"}
summary=$OUT/summary.txt
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

work=/tmp/t2v-gpu
rm -rf "$work" && mkdir -p "$work"
if [ ! -f "$root/.gpu/bundle.tar.gz" ]; then
  note "no .gpu/bundle.tar.gz: run tools/gpu/bundle.sh on the build machine and carry .gpu"
  exit 66
fi
tar -C "$work" -xzf "$root/.gpu/bundle.tar.gz"

# cuBLAS/cuDNN: the toolkit's lib64 and, where torch is installed, its nvidia wheels.
libpath=$work/lib
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && libpath=$libpath:$d
done
for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
  for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && libpath=$libpath:$d; done
done
export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

{
  echo "commit (bundle): $(cat "$work/COMMIT") archs $(cat "$work/ARCHS")"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  ldd "$work/bin/test_cuda"
  command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer
} > "$OUT/env.log" 2>&1
note "gpu: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1); bundle commit $(cut -c1-10 "$work/COMMIT")"
if grep -q "=> not found" "$OUT/env.log"; then
  note "missing libraries:"; grep "=> not found" "$OUT/env.log" | tee -a "$summary"
fi

for step in $steps; do
  case $step in
    tests)
      # Every op vs the CPU reference, including the real Wan shapes.
      T2V_CUDA_TEST_LARGE=1 timeout 270 "$work/bin/test_cuda" --gtest_output="xml:$OUT/test_cuda.xml" \
        > "$OUT/test_cuda.log" 2>&1
      rc=$?
      note "test_cuda rc=$rc: $(grep -E '^\[  (PASSED|FAILED|SKIPPED) *\] [0-9]+ test' "$OUT/test_cuda.log" | tr '\n' ' ')"
      grep -E '^\[  FAILED  \] [A-Za-z]' "$OUT/test_cuda.log" | sort -u | head -20 | tee -a "$summary"
      ;;
    memcheck)
      # Small cases only (memcheck slows kernels 10-100x); blocks uncached so
      # each tensor is its own allocation as far as the tool can see.
      cs=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
      T2V_CUDA_UNCACHED=1 timeout 170 "$cs" --tool memcheck --error-exitcode 9 \
        "$work/bin/test_cuda" --gtest_filter='*BackendOps*' > "$OUT/memcheck.log" 2>&1
      rc=$?
      note "memcheck rc=$rc: $(grep -E 'ERROR SUMMARY|LEAK SUMMARY' "$OUT/memcheck.log" | tail -2 | tr '\n' ' ')"
      ;;
    bench)
      {
        timeout 60 "$work/bin/ops_bench" --reps 10                                      # every op at Wan 1.3B sizes
        timeout 30 "$work/bin/attention_lab" --variants 23 --reps 5                     # Wan 1.3B self-attention
        timeout 20 "$work/bin/attention_lab" --variants 23 --nq 32760 --nk 512 --reps 5 # Wan 1.3B cross-attention
        timeout 30 "$work/bin/attention_lab" --variants 123 --n 4096 --reps 3           # all variants at 4096 tokens
      } > "$OUT/bench.log" 2>&1
      note "bench rc=$?:"; grep -E "ms|attention_lab|check|not timed|memory|error" "$OUT/bench.log" | tee -a "$summary"
      ;;
    compare)
      # t2v bench beside diffusers (bf16, PyTorch SDPA) on the real 1.3B shapes, same GPU.
      if ls "$work"/wheels/diffusers-*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-deps --target "$work/py" "$work"/wheels/diffusers-*.whl >/dev/null 2>&1
        PYTHONPATH=$work/py${PYTHONPATH:+:$PYTHONPATH} timeout 300 python3 "$root/tools/bench/compare_diffusers.py" \
          --t2v "$work/bin/t2v" --device cuda --json "$OUT/compare.json" > "$OUT/compare.log" 2>&1
        note "compare rc=$?:"; grep -E "tokens|stage|DiT|VAE|peak|Error|error" "$OUT/compare.log" | tee -a "$summary"
      else
        note "compare: skipped, no diffusers wheel in the bundle"
      fi
      ;;
  esac
done
echo "---- summary ($OUT/summary.txt)"
cat "$summary"
