#!/usr/bin/env bash
# Session 9, device call 2 (repository root; carry [".gpubin"] after
# scripts/gpu/pack_binaries.sh): main with the tile scan and the dQ split merged
# and the products timed on random data, back to back. In order of importance:
# the Hopper attention tests (forward scan + backward dQ split together, first
# time), the gemm benchmark (issue 7: every product's refined column >= 0.95),
# the whole CUDA suite (cuda_check.sh tests), the attention benchmark twice.
set -u
export OUT=${OUT:-/tmp/duet-out}
O=$OUT
mkdir -p "$O/own" "$O/suite"
source scripts/gpu/unpack_binaries.sh > /dev/null || exit 1
echo "binaries: $(cat "$GPUBIN/commit")"
t0=$(date +%s)
timeout 90 "$GPUBIN/test_cuda_attention" --gtest_filter='CudaAttentionSm90.*' > "$O/own/sm90.log" 2>&1
echo "sm90 attention tests: exit $? ($(grep -E '^\[  (PASSED|FAILED)' "$O/own/sm90.log" | tr '\n' ' ')) at $(( $(date +%s) - t0 )) s"
grep -E "^\[  FAILED|Failure|worst" "$O/own/sm90.log" | head -12
timeout 170 "$GPUBIN/bench_gemm_cuda" > "$O/own/bench_gemm.txt" 2>&1
echo "bench_gemm_cuda: exit $? at $(( $(date +%s) - t0 )) s; below 0.95 (refined column last):"
awk 'NF >= 9 && $NF ~ /^[0-9.]+$/ && $NF < 0.95' "$O/own/bench_gemm.txt"; tail -5 "$O/own/bench_gemm.txt"
OUT=$O/suite TEST_TIMEOUT=300 bash scripts/gpu/cuda_check.sh tests 2>&1 | tail -12
echo "suite done at $(( $(date +%s) - t0 )) s"
for pass in 1 2; do
  timeout 40 "$GPUBIN/bench_attention_cuda" > "$O/own/bench_attention_$pass.txt" 2>&1
  echo "attention $pass (exit $?): row/D fwd bwd TFLOP/s"
  grep -E "^(causal|capybara|hh-rlhf|tulu|metamath|tldr|ultra)" "$O/own/bench_attention_$pass.txt" |
    awk '{printf "%s/%s %s %s  ", $1, $2, $5, $7}'; echo
done
tar -czf /tmp/own.tgz -C "$O/own" . && rm -rf "$O/own" && mkdir -p "$O/own" && mv /tmp/own.tgz "$O/own/logs.tgz"
echo "total $(( $(date +%s) - t0 )) s"
