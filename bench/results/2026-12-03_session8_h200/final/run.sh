#!/usr/bin/env bash
# The eighth session's last call (repository root, the bundle of the merged
# commit in .gpubin; about 3 minutes of device time were left): the attention
# tests and benchmark on the merged forward (K and V by two producer warps),
# the gemm tests (fp32 split-K sums, refinement), the LoRA family that failed
# at 1.008 of tolerance in the refine call plus tuning coverage, and the gemm
# benchmark (beta-aware tuning), in order of importance.
set -u
export OUT=${OUT:-/tmp/duet-out}
mkdir -p "$OUT"
source scripts/gpu/unpack_binaries.sh > /dev/null || exit 1
echo "binaries: $(cat "$GPUBIN/commit")"
t0=$(date +%s)
run() {  # name timeout binary args...: the log in $OUT, its verdict here
  local name=$1 limit=$2; shift 2
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $? ($(grep -E '^\[  (PASSED|FAILED)' "$OUT/$name.log" | tr '\n' ' ')) at $(( $(date +%s) - t0 )) s"
  grep -E "^\[  FAILED|Failure|worst log-prob" -A3 "$OUT/$name.log" | head -16
}
run test_cuda_attention 60 "$GPUBIN/test_cuda_attention"
run test_cuda_ops 60 "$GPUBIN/test_cuda_ops"
timeout 40 "$GPUBIN/bench_attention_cuda" > "$OUT/bench_attention.txt" 2>&1
echo "bench_attention_cuda: exit $? at $(( $(date +%s) - t0 )) s"
grep -E "^(profile|row|causal|capybara|hh-rlhf|tulu|metamath|tldr|ultra)" "$OUT/bench_attention.txt" | head -16
run test_cuda_engine 50 "$GPUBIN/test_cuda_engine" \
  --gtest_filter='Families/CudaLoraFamilies.*/mistral:CudaEngineTuning.*:Families/CudaEngineFamilies.*/llama'
timeout $(( 185 - ($(date +%s) - t0) )) "$GPUBIN/bench_gemm_cuda" --repeats 8 > "$OUT/bench_gemm.txt" 2>&1
echo "bench_gemm_cuda: exit $? at $(( $(date +%s) - t0 )) s"
awk '$NF < 0.95 && NF == 9' "$OUT/bench_gemm.txt"; tail -5 "$OUT/bench_gemm.txt"
