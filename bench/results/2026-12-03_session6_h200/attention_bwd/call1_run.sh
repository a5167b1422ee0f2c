#!/usr/bin/env bash
# Call 1 (attn-bwd helper): tests of V=1 (and V=7 briefly), benches base / V0 V1 V3 V5 V7, ncu source-level of V=1's hd128 passes.
# Variants (DUET_BWD_V): 0 old probabilities; 1 mask pass + ex2.approx.ftz; 3 = 1 + dK deferred to the next
# step (dK/dV); 5 = 1 + consumer turns; 7 = 3 + turns. "base" = main's binary (46fba3f).
set -u
export DUET_GPUBIN_DIR=.gpubin-attn
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
t0=$(date +%s)
export DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1
DUET_BWD_V=7 timeout 40 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*:-*LongRow*' > $OUT/tests_v7.log 2>&1; echo "tests V7 rc=$?"
grep -E "OK \]|FAILED" $OUT/tests_v7.log | head -6
DUET_BWD_V=1 timeout 60 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*' > $OUT/tests_v1.log 2>&1; echo "tests V1 rc=$? ($(( $(date +%s) - t0 )) s)"
grep -E "OK \]|FAILED" $OUT/tests_v1.log | head -6
{
for v in base 1 0 3 5 7; do
  b=$GPUBIN/bench_attention_cuda; args="--only causal"
  [ $v = base ] && b=$GPUBIN/bench_base
  { [ $v = base ] || [ $v = 1 ] || [ $v = 7 ]; } && args=""
  echo "=== $v $args"
  DUET_BWD_V=$v timeout 30 $b $args 2>&1
done
} > $OUT/bench_all.txt
echo "benches done ($(( $(date +%s) - t0 )) s)"
grep -E "===|causal" $OUT/bench_all.txt
DUET_BWD_V=1 timeout 100 ncu --clock-control none --kernel-name regex:'dkdv_sm90|dq_sm90' --launch-count 2 \
  --section SourceCounters --section WarpStateStats --section SpeedOfLight --section ComputeWorkloadAnalysis \
  -o /tmp/rep $GPUBIN/bench_attention_cuda --only causal --repeats 1 > /tmp/ncu_log.txt 2>&1
echo "ncu rc=$? ($(( $(date +%s) - t0 )) s)"; tail -2 /tmp/ncu_log.txt
ncu -i /tmp/rep.ncu-rep --page details > $OUT/ncu_details.txt 2>&1
grep -E "sm90_kernel|Duration|Issue Slots|Warp Cycles Per Issued" $OUT/ncu_details.txt | head -12
ncu -i /tmp/rep.ncu-rep --page source --csv --print-source sass > /tmp/source.csv 2>&1
echo "source rows: $(wc -l < /tmp/source.csv)"
xz -T0 -6 -c /tmp/source.csv > $OUT/source.csv.xz
echo "total $(( $(date +%s) - t0 )) s"
