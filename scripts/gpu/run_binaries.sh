#!/usr/bin/env bash
# On the GPU machine: runs a binary packed here by scripts/gpu/pack_binaries.sh
# (carried as .gpubin/) with its libraries and NCCL from torch's wheel.
#   scripts/gpu/run_binaries.sh test_cuda_engine --gtest_filter='...'
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)/.gpubin
nccl=$(python3 -c "import nvidia.nccl, os; print(os.path.join(nvidia.nccl.__path__[0], 'lib'))" 2>/dev/null || true)
export LD_LIBRARY_PATH="$here/lib${nccl:+:$nccl}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
missing=$(ldd "$here/$1" | grep "not found" || true)
[ -z "$missing" ] || { echo "run_binaries: $1 lacks: $missing" >&2; exit 1; }
exec "$here/$1" "${@:2}"
