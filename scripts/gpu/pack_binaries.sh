#!/usr/bin/env bash
# Run HERE: builds the named targets in build/ (CUDA on: nvcc 13.0 is here and
# the build targets sm_90a) and copies them into .gpubin/ with the shared
# libraries the GPU machine lacks (Debian's OpenBLAS, fmt and their runtime
# libraries), so a device call runs tests at once instead of spending minutes
# of device time on a build. The CUDA libraries (cudart, cuBLASLt) are the
# machine's own; NCCL comes from torch's wheel there (scripts/gpu/run_binaries.sh).
#   scripts/gpu/pack_binaries.sh [TARGET...]   (default: the CUDA test binaries and duet)
# Then: run with carry [".gpubin"] and command `scripts/gpu/run_binaries.sh BINARY [ARGS]`.
set -euo pipefail
cd "$(dirname "$0")/../.."
targets=("$@")
((${#targets[@]})) || targets=(duet test_cuda_ops test_cuda_attention test_cuda_engine)
[ -d build ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target "${targets[@]}"
rm -rf .gpubin && mkdir -p .gpubin/lib
for t in "${targets[@]}"; do
  bin=$(find build -type f -executable -name "$t" | head -1)
  [ -n "$bin" ] || { echo "pack_binaries: no binary for target $t" >&2; exit 1; }
  cp "$bin" .gpubin/
  # Every library resolved from Debian's /lib or /usr/lib except glibc's own
  # (the machine's newer glibc runs what was linked against Debian 12's).
  ldd "$bin" | awk '$3 ~ /^\/(usr\/)?lib\// {print $3}' |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so' |
    while read -r lib; do cp -Lu "$lib" .gpubin/lib/; done
done
du -sh .gpubin
