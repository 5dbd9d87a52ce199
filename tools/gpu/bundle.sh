#!/usr/bin/env bash
# Builds the GPU test/bench binaries HERE (the machine with the Debian -dev
# packages) and packs them with their non-CUDA shared libraries into
# .gpu/bundle.tar.gz (git-ignored), to be carried to the GPU machine, where
# tools/gpu/run.sh unpacks and runs them. The GPU machine has nvcc and the CUDA
# libraries but probably none of fmt/OpenBLAS/GoogleTest/..., so building there
# would need the whole dependency set; carrying ~15 MB of binaries is cheaper.
#
#   tools/gpu/bundle.sh                 # sm_90a (H100/H200)
#   ARCHS="90a;80;89" tools/gpu/bundle.sh
# Then call the device with carry [".gpu"] and command `bash tools/gpu/run.sh`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build/gpu-bundle}
archs=${ARCHS:-90a}
out=$root/.gpu
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DT2V_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CUDA_ARCHITECTURES=$archs" -DT2V_WERROR=ON >/dev/null
ninja -C "$build" -j"${JOBS:-2}" test_cuda t2v

stage=$(mktemp -d)
mkdir -p "$stage/bin" "$stage/lib"
cp "$build/tests/test_cuda" "$build/app/t2v" "$stage/bin/"
# diffusers is pure Python and absent there (torch is present): its wheel travels along
# for tools/bench/compare_diffusers.py.
mkdir -p "$stage/wheels"
pip download -q --no-deps "diffusers==$(python3 -c 'import diffusers; print(diffusers.__version__)')" -d "$stage/wheels" ||
  echo "bundle: warning: no diffusers wheel (no network?); the diffusers comparison will be skipped" >&2
# The kernel lab: a CMake target once kernels/dev is added to the build; until
# then compiled here directly against the same static libraries.
if [ -x "$build/kernels/dev/attention_lab" ]; then
  cp "$build/kernels/dev/attention_lab" "$stage/bin/"
else
  nvcc -std=c++17 -O3 -lineinfo "-gencode=arch=compute_${archs%%;*},code=sm_${archs%%;*}" -I"$root" \
    "$root/kernels/dev/attention_lab.cu" -o "$stage/bin/attention_lab" \
    "$build/kernels/libt2v_kernels.a" "$build/core/libt2v_core.a" -lcublasLt -lcublas -lfmt -lgomp
fi
if [ -x "$build/kernels/dev/ops_bench" ]; then
  cp "$build/kernels/dev/ops_bench" "$stage/bin/"
else
  c++ -std=c++20 -O2 -fopenmp -DT2V_HAVE_CUDA=1 -I"$root" -I/usr/local/cuda/include \
    "$root/kernels/dev/ops_bench.cpp" -o "$stage/bin/ops_bench" \
    "$build/kernels/libt2v_kernels.a" "$build/core/libt2v_core.a" \
    -L/usr/local/cuda/lib64 -lcudart -lcublasLt -lcublas -lfmt -lopenblas
fi

# Shared libraries that are neither glibc/libstdc++ (newer there) nor the big
# CUDA libraries (cuBLAS/cuBLASLt/cuDNN exist there; libcudart is small and is carried).
for bin in "$stage"/bin/*; do
  ldd "$bin" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
    libcublas*|libcudnn*) ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
git -C "$root" rev-parse HEAD > "$stage/COMMIT"
echo "$archs" > "$stage/ARCHS"
mkdir -p "$out"
tar -C "$stage" -czf "$out/bundle.tar.gz" .
rm -rf "$stage"
echo "bundle: $out/bundle.tar.gz ($(du -h "$out/bundle.tar.gz" | cut -f1)), commit $(git -C "$root" rev-parse --short HEAD)"
