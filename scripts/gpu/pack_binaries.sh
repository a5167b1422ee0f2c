#!/usr/bin/env bash
# Run HERE: builds the named targets in build/ (CUDA on: nvcc 13.0 is here and
# the build targets sm_90a) and packs them, with the shared libraries the GPU
# machine lacks (Debian's OpenBLAS, fmt, OpenMPI, pcre2, ...: everything the
# binaries resolve from /lib except glibc and libstdc++), into
# .gpubin/bundle.tar.xz (about 10 MB). A device call then runs tests and
# benchmarks at once instead of spending minutes of device time on a build:
# carry [".gpubin"], and scripts/gpu/cuda_check.sh uses the bundle when it is
# there (or `source scripts/gpu/unpack_binaries.sh; "$GPUBIN/test_cuda_engine"`).
# The CUDA libraries (cudart, cuBLASLt) are the machine's, NCCL torch's wheel's.
#   scripts/gpu/pack_binaries.sh [TARGET...]   (default: duet, the CUDA tests and benchmarks)
# Two people (or helpers) working at once keep apart with DUET_BUILD_DIR (default
# build) and DUET_GPUBIN_DIR (default .gpubin; carry that folder and set the same
# variable in the device command so cuda_check.sh / unpack_binaries.sh find it).
set -euo pipefail
cd "$(dirname "$0")/../.."
targets=("$@")
((${#targets[@]})) ||
  targets=(duet test_cuda_ops test_cuda_attention test_cuda_engine test_dist_nccl bench_gemm_cuda bench_attention_cuda)
build=${DUET_BUILD_DIR:-build}
gpubin=${DUET_GPUBIN_DIR:-.gpubin}
[ -d "$build" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
stage=$build/gpubin
rm -rf "$stage" && mkdir -p "$stage/lib"
for t in "${targets[@]}"; do
  bin=$(find "$build" -path "$build/gpubin" -prune -o -type f -executable -name "$t" -print | head -1)
  [ -n "$bin" ] || { echo "pack_binaries: no binary for target $t" >&2; exit 1; }
  cp "$bin" "$stage/"
  ldd "$bin" | awk '$3 ~ /^\/(usr\/)?lib\// {print $3}' |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so' |
    while read -r lib; do cp -Lu "$lib" "$stage/lib/"; done
done
git describe --always --dirty > "$stage/commit"
mkdir -p "$gpubin"
tar -cf - -C "$stage" . | xz -T0 -6 > "$gpubin/bundle.tar.xz"
echo "pack_binaries: $(du -h "$gpubin/bundle.tar.xz" | cut -f1) $gpubin/bundle.tar.xz ($(cat "$stage/commit"))"
