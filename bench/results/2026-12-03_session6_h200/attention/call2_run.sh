#!/usr/bin/env bash
# Call 2 (attn-fwd helper): tests of b, benches base/C/a/b, ncu source-level stalls of b's hd128 forward.
set -u
export DUET_GPUBIN_DIR=.gpubin-attn
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit
t0=$(date +%s)
timeout 150 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*' > $OUT/sm90_tests_b.log 2>&1; echo "tests b rc=$?"
grep -E "OK \]|FAILED|worst" $OUT/sm90_tests_b.log | head -16
{
for v in base C a b; do
  case $v in base) b=bench_base;; C) b=bench_C;; a) b=bench_a;; b) b=bench_attention_cuda;; esac
  echo "=== $v ($b)"
  DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 100 $GPUBIN/$b 2>&1
done
} > $OUT/bench_all.txt
echo "benches done ($(( $(date +%s) - t0 )) s)"
grep -E "===|causal|capybara|hh-rlhf" $OUT/bench_all.txt
DUET_ATTENTION_SM90=1 timeout 150 ncu --clock-control none --kernel-name regex:forward_sm90 --launch-count 1 \
  --section SourceCounters --section WarpStateStats --section SpeedOfLight --section ComputeWorkloadAnalysis \
  -o /tmp/rep $GPUBIN/bench_attention_cuda --only causal --repeats 1 > /tmp/ncu_log.txt 2>&1
echo "ncu rc=$? ($(( $(date +%s) - t0 )) s)"; tail -3 /tmp/ncu_log.txt
ncu -i /tmp/rep.ncu-rep --page details > $OUT/ncu_details.txt 2>&1
grep -E "Duration|Issue Slots|Tensor|Warp Cycles" $OUT/ncu_details.txt | head
ncu -i /tmp/rep.ncu-rep --page source --csv --print-source sass > /tmp/source.csv 2>&1
echo "source rows: $(wc -l < /tmp/source.csv)"; head -c 600 /tmp/source.csv; echo
xz -T0 -6 -c /tmp/source.csv > $OUT/source.csv.xz
echo "total $(( $(date +%s) - t0 )) s"
