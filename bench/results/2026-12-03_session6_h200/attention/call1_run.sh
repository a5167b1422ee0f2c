#!/usr/bin/env bash
# Call 1 (attn-fwd helper): tests of C and A, benches base/A/B/C + mma, ncu of the forward.
set -u
export DUET_GPUBIN_DIR=.gpubin-attn
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
t0=$(date +%s)
timeout 150 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*' > $OUT/sm90_tests_C.log 2>&1; echo "tests C rc=$?"
grep -E "OK \]|FAILED|worst" $OUT/sm90_tests_C.log | head -16
timeout 150 $GPUBIN/test_A --gtest_filter='CudaAttentionSm90.*' > $OUT/sm90_tests_A.log 2>&1; echo "tests A rc=$? ($(( $(date +%s) - t0 )) s)"
grep -E "FAILED|PASSED" $OUT/sm90_tests_A.log | head -5
{
for v in base A B C mma; do
  case $v in base) b=bench_base;; A) b=bench_A;; B) b=bench_B;; C|mma) b=bench_attention_cuda;; esac
  e=1; [ $v = mma ] && e=0
  echo "=== $v ($b, SM90=$e)"
  DUET_ATTENTION_SM90=$e DUET_ATTENTION_BWD_SM90=$e timeout 100 $GPUBIN/$b 2>&1
done
} > $OUT/bench_all.txt
echo "benches done ($(( $(date +%s) - t0 )) s)"
grep -E "===|causal|capybara" $OUT/bench_all.txt
for b in bench_base bench_attention_cuda; do
  DUET_ATTENTION_SM90=1 timeout 60 ncu --clock-control none --kernel-name regex:forward --metrics gpu__time_duration.sum \
    $GPUBIN/$b --only causal --repeats 1 2>&1 | grep -E "forward_sm90_kernel|duration" | paste - - | awk -v b=$b '{print b, $0}'
done > $OUT/ncu_times.txt
cat $OUT/ncu_times.txt | awk '{print $1, $2, $NF}'
DUET_ATTENTION_SM90=1 timeout 120 ncu --clock-control none --kernel-name regex:forward_sm90 --launch-count 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy \
  --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active \
  $GPUBIN/bench_attention_cuda --only causal --repeats 1 > $OUT/ncu_sections.txt 2>&1
grep -E "Duration|SM Active|Issue Slots|Eligible|Compute \(SM\)|gmma|No Eligible" $OUT/ncu_sections.txt | head -20
awk '/issue_stalled/ && $NF > 0.1 { sub(/smsp__average_warps_issue_stalled_/, ""); print $1, $NF }' $OUT/ncu_sections.txt
echo "total $(( $(date +%s) - t0 )) s"
