#!/usr/bin/env bash
# Call 1 (attn-fwd-8 helper): all attention tests of P (persistent grid, Q by TMA, K released
# before the softmax on Full tiles); benches base (2be971c) / P / P240 (registers 240/32) and
# the timing-only variants X1 (no softmax) / X2 (no P V in the loop); ncu of P's hd128 forward.
set -u
export DUET_GPUBIN_DIR=.gpubin-attn
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader
t0=$(date +%s)
timeout 100 $GPUBIN/test_P --gtest_filter='CudaAttention*' > $OUT/tests_P.log 2>&1; rc=$?; echo "tests P rc=$rc ($(( $(date +%s) - t0 )) s)"
grep -E "OK \]|FAILED|PASSED" $OUT/tests_P.log | tail -14
if [ $rc -ne 0 ]; then
  timeout 60 compute-sanitizer --tool memcheck $GPUBIN/test_P --gtest_filter='CudaAttentionSm90.PersistentGridWithFewCtas' > $OUT/memcheck_P.log 2>&1
  grep -m 8 -E "Invalid|ERROR SUMMARY|at 0x|by thread" $OUT/memcheck_P.log
fi
nvidia-smi --query-gpu=clocks.sm --format=csv,noheader -lms 200 > $OUT/clocks.txt 2>&1 & smi=$!
{
for v in base P P240 base P; do
  echo "=== $v"; DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 60 $GPUBIN/bench_$v 2>&1
done
for v in X1 X2 P base; do
  echo "=== $v (causal)"; DUET_ATTENTION_SM90=1 timeout 30 $GPUBIN/bench_$v --only causal 2>&1 | grep causal
done
} > $OUT/bench_all.txt
kill $smi
echo "benches done ($(( $(date +%s) - t0 )) s)"; sort $OUT/clocks.txt | uniq -c | sort -rn | head -4
grep -E "===|causal|capybara|hh-rlhf" $OUT/bench_all.txt
DUET_ATTENTION_SM90=1 timeout 150 ncu --clock-control none --kernel-name regex:forward_sm90 --launch-skip 1 --launch-count 1 \
  --section SourceCounters --section WarpStateStats --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  --metrics sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active \
  -o /tmp/rep $GPUBIN/bench_P --only causal --repeats 1 > /tmp/ncu_log.txt 2>&1
echo "ncu rc=$? ($(( $(date +%s) - t0 )) s)"; tail -2 /tmp/ncu_log.txt
ncu -i /tmp/rep.ncu-rep --page details > $OUT/ncu_details.txt 2>&1
grep -E "Duration|SM Frequency|Issue Slots|gmma|Shared Memory|Warp Cycles" $OUT/ncu_details.txt | head
ncu -i /tmp/rep.ncu-rep --page source --csv --print-source sass > /tmp/source.csv 2>&1
xz -T0 -6 -c /tmp/source.csv > $OUT/source.csv.xz
echo "total $(( $(date +%s) - t0 )) s"
