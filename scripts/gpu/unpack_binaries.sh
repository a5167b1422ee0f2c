#!/usr/bin/env bash
# Sourced on the GPU machine: unpacks ${DUET_GPUBIN_DIR:-.gpubin}/bundle.tar.xz (made here by
# scripts/gpu/pack_binaries.sh) into /tmp/gpubin, sets GPUBIN to it and
# LD_LIBRARY_PATH to its libraries and NCCL from torch's wheel, and refuses a
# bundle whose binaries miss a library (one line naming it).
bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/${DUET_GPUBIN_DIR:-.gpubin}/bundle.tar.xz"
export GPUBIN=/tmp/gpubin
rm -rf "$GPUBIN" && mkdir -p "$GPUBIN" && tar -xJf "$bundle" -C "$GPUBIN" || { echo "unpack_binaries: cannot unpack $bundle" >&2; return 1; }
nccl=$(python3 -c "import nvidia.nccl, os; print(os.path.join(nvidia.nccl.__path__[0], 'lib'))" 2>/dev/null || true)
export LD_LIBRARY_PATH="$GPUBIN/lib${nccl:+:$nccl}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
for b in "$GPUBIN"/*; do
  [ -f "$b" ] && [ -x "$b" ] || continue
  missing=$(ldd "$b" 2>/dev/null | grep "not found" | awk '{print $1}' | tr '\n' ' ')
  [ -z "$missing" ] || { echo "unpack_binaries: $(basename "$b") lacks $missing" >&2; return 1; }
done
