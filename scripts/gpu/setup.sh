#!/usr/bin/env bash
# Sourced on the GPU test machine (Ubuntu 24.04, no package registry): unpacks
# the Debian packages it lacks (carried in .debs/, see docs/gpu-machine.md) and
# configures + builds duet with them.  Usage: source scripts/gpu/setup.sh [LAYERS]
set -euo pipefail
deb_root=/tmp/deb
mkdir -p "$deb_root"
for f in .debs/*.deb; do dpkg -x "$f" "$deb_root"; done
export LD_LIBRARY_PATH="$deb_root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
layers="${1:-util;tokenizer;data;layout;model;backend;engine;loss;trainer;bench;cli}"
# No OpenMPI there (the CUDA engine's ranks exchange the NCCL id over TCP);
# NCCL from the pip wheel that torch brought, when present.
nccl_root=$(python3 -c "import nvidia.nccl; print(nvidia.nccl.__path__[0])" 2>/dev/null || true)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deb_root/usr" \
  "-DDUET_LAYERS=$layers" -DDUET_MPI=OFF ${nccl_root:+-DDUET_NCCL_ROOT=$nccl_root} \
  > "${OUT:-/tmp}/cmake.log" 2>&1 || { tail -30 "${OUT:-/tmp}/cmake.log"; exit 1; }
if [ -n "${DUET_BUILD_TARGETS:-}" ]; then  # the named targets this configuration has (test_dist_nccl needs NCCL)
  known=$(ninja -C build-gpu -t targets all | cut -d: -f1)
  targets=$(for t in $DUET_BUILD_TARGETS; do grep -qx "$t" <<<"$known" && echo "$t"; done | tr '\n' ' ')
fi
cmake --build build-gpu -j16 ${targets:+--target $targets} > "${OUT:-/tmp}/build.log" 2>&1 || { grep -E "error" "${OUT:-/tmp}/build.log" | head -30; exit 1; }
