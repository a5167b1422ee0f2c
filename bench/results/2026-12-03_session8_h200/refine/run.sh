#!/usr/bin/env bash
# The eighth session's refinement call (repository root, the bundle of the
# commit under test in .gpubin): the gemm and LM-head tests (refined choices,
# their text; targets padded to 64), the engine's tests against the CPU engine
# (families, one LoRA family), tuning coverage, memory, ZeRO-3 and one NCCL
# rank (device time: not the 50-step curves), the gemm bench (the refined plan
# beside the others) and cuda_check.sh's tuning step (resume bit for bit; 8B
# whole steps and the tuning's wall time, heuristic against tuned and refined).
set -u
export OUT=${OUT:-/tmp/duet-out}
mkdir -p "$OUT"
source scripts/gpu/unpack_binaries.sh > /dev/null || exit 1
echo "binaries: $(cat "$GPUBIN/commit")"
timeout 90 "$GPUBIN/test_cuda_ops" > "$OUT/test_cuda_ops.log" 2>&1
echo "test_cuda_ops: exit $? ($(grep -E '^\[  (PASSED|FAILED)' "$OUT/test_cuda_ops.log" | tr '\n' ' '))"
grep -E "FAILED|Failure" -A4 "$OUT/test_cuda_ops.log" | head -20
timeout 150 "$GPUBIN/test_cuda_engine" \
  --gtest_filter='Families/CudaEngineFamilies.*:Families/CudaLoraFamilies.*/mistral:CudaEngineTuning.*:CudaMemoryEstimate.*:CudaEngineZeroThree.*:CudaEngineDataParallel.*:CudaEngineState.*' \
  > "$OUT/test_cuda_engine.log" 2>&1
echo "test_cuda_engine: exit $? ($(grep -E '^\[  (PASSED|FAILED)' "$OUT/test_cuda_engine.log" | tr '\n' ' '))"
grep -E "FAILED|Failure" -A4 "$OUT/test_cuda_engine.log" | head -20
timeout 150 "$GPUBIN/bench_gemm_cuda" > "$OUT/bench_gemm.txt" 2>&1
echo "bench_gemm_cuda: exit $?"; tail -6 "$OUT/bench_gemm.txt"
TUNING_PASSES=1 TUNING_MODELS=8b scripts/gpu/cuda_check.sh tuning > "$OUT/check.log" 2>&1
grep -E "matrix products|resume|checkpoint-4|==|packed|summary|exit" "$OUT/check.log"
