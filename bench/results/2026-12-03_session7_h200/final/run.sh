#!/usr/bin/env bash
# The seventh session's last call (repository root, the bundle of the commit
# under test in .gpubin): the merged code's gemm and attention tests, the
# engine tests that cover tuning, the forward path and reserve, the gemm
# bench (heuristic / octave / half-octave / exact) and, last (cut if the
# call runs out), whole 1B hh-rlhf steps with the half-octave tuning beside the heuristic.
set -u
export OUT=${OUT:-/tmp/duet-out}
mkdir -p "$OUT"
source scripts/gpu/unpack_binaries.sh > /dev/null || exit 1
echo "binaries: $(cat "$GPUBIN/commit")"
result() { echo "$1: exit $2 ($(grep -E '^\[  (PASSED|FAILED)' "$3" | tr '\n' ' '))"; grep -E "^\[  FAILED|Failure" -A3 "$3" | head -12; }
timeout 60 "$GPUBIN/test_cuda_ops" > "$OUT/test_cuda_ops.log" 2>&1; result test_cuda_ops $? "$OUT/test_cuda_ops.log"
timeout 60 "$GPUBIN/test_cuda_attention" > "$OUT/test_cuda_attention.log" 2>&1; result test_cuda_attention $? "$OUT/test_cuda_attention.log"
timeout 100 "$GPUBIN/test_cuda_engine" --gtest_filter='CudaEngineTuning.*:Families/CudaEngineFamilies.*:CudaMemoryEstimate.*:CudaEngineZeroThree.*:CudaEngineDataParallel.*' \
  > "$OUT/test_cuda_engine.log" 2>&1; result "test_cuda_engine (subset)" $? "$OUT/test_cuda_engine.log"
timeout 100 "$GPUBIN/bench_gemm_cuda" > "$OUT/bench_gemm.txt" 2>&1; echo "bench_gemm: exit $?"; tail -1 "$OUT/bench_gemm.txt"
for t in 0 16; do
  t0=$(date +%s.%N)
  DUET_GEMM_AUTOTUNE=$t timeout 40 "$GPUBIN/duet" bench --arch llama-3.2-1b --profile hh-rlhf \
    --layout shared+packed --examples-per-step 64 > "$OUT/bench1b_t$t.txt" 2>&1
  echo "== bench1b_t$t: exit $? ($(python3 -c "import time; print(round(time.time() - $t0, 1))") s wall)"; grep packed "$OUT/bench1b_t$t.txt"
done
