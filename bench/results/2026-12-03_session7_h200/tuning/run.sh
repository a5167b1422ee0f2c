#!/usr/bin/env bash
# The seventh session's tuning call (repository root, the bundle of the commit
# under test in .gpubin): the gemm tests (tuned buckets, the algorithms' text),
# the engine tests that reserve (the coverage of tuning, the families, the
# memory estimate), then cuda_check.sh's gemm bench and tuning step (resume bit
# for bit with the saved algorithms; whole steps tuned beside untuned).
set -u
export OUT=${OUT:-/tmp/duet-out}
mkdir -p "$OUT"
source scripts/gpu/unpack_binaries.sh > /dev/null || exit 1
echo "binaries: $(cat "$GPUBIN/commit")"
timeout 60 "$GPUBIN/test_cuda_ops" > "$OUT/test_cuda_ops.log" 2>&1
echo "test_cuda_ops: exit $? ($(grep -E '^\[  (PASSED|FAILED)' "$OUT/test_cuda_ops.log" | tr '\n' ' '))"
grep -E "FAILED|Failure" -A4 "$OUT/test_cuda_ops.log" | head -20
timeout 150 "$GPUBIN/test_cuda_engine" \
  --gtest_filter='CudaEngineTuning.*:Families/CudaEngineFamilies.*:CudaMemoryEstimate.*' > "$OUT/test_cuda_engine.log" 2>&1
echo "test_cuda_engine (tuning, families, memory): exit $? ($(grep -E '^\[  (PASSED|FAILED)' "$OUT/test_cuda_engine.log" | tr '\n' ' '))"
grep -E "FAILED|Failure|peak|estimate" -A3 "$OUT/test_cuda_engine.log" | head -20
scripts/gpu/cuda_check.sh gemm tuning > "$OUT/check.log" 2>&1
grep -E "worst ratio|matrix products|resume|checkpoint-4|==|packed|summary|exit" "$OUT/check.log"
