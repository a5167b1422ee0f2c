#!/usr/bin/env bash
# Call 3 (attn-bwd helper): the final commit (617b050): every attention test (CudaAttentionSm90.*
# and CudaAttention.*, three processes at once), the benchmark, base's causal row, ncu of the hd128 passes.
set -u
export DUET_GPUBIN_DIR=.gpubin-attn
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit; nvidia-smi --query-gpu=name,clocks.sm,temperature.gpu --format=csv,noheader
t0=$(date +%s)
T=$GPUBIN/test_cuda_attention
timeout 60 $T --gtest_filter='CudaAttentionSm90.LongRow*' > $OUT/tests_sm90_long.log 2>&1 & p1=$!
timeout 60 $T --gtest_filter='CudaAttentionSm90.*:-*LongRow*' > $OUT/tests_sm90_rest.log 2>&1 & p2=$!
timeout 60 $T --gtest_filter='CudaAttention.*' > $OUT/tests_generic.log 2>&1 & p3=$!
wait $p1; r1=$?; wait $p2; r2=$?; wait $p3; r3=$?
echo "tests rc $r1 $r2 $r3 ($(( $(date +%s) - t0 )) s)"
grep -hE "OK \]|FAILED" $OUT/tests_*.log
{ DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 30 $GPUBIN/bench_attention_cuda
  echo "=== base"; timeout 20 $GPUBIN/bench_base --only causal; } > $OUT/bench.txt 2>&1
grep -E "causal|===" $OUT/bench.txt
timeout 30 ncu --clock-control none --kernel-name regex:'dkdv|dq_' --launch-count 2 --metrics gpu__time_duration.sum \
  $GPUBIN/bench_attention_cuda --only causal --repeats 1 2>&1 | grep -E "sm90_kernel|gpu__time" > $OUT/ncu_times.txt
cat $OUT/ncu_times.txt
echo "total $(( $(date +%s) - t0 )) s"
