#!/usr/bin/env bash
# Call 1 (attn-fwd-9 helper): run as `bash .gpubin-fwd/run1.sh` with carry [".gpubin-fwd"] (bundle: the
# exploration build cc8ff83 as test_cuda_attention / bench_attention_cuda, main 87c2259 as test_base /
# bench_base). Variants by DUET_ATTENTION_SM90_VARIANT: 0 = K warp + V thread apart, stages as base
# (hd128 2 K / 2 V, hd64 3 / 3); 1 = 0 with one more K stage (3 / 2, 4 / 3); 2 = 1 + the item edges
# merged (an item's first S in the turn of the last item's final P V, the epilogue under it);
# 3 = 0 + the merge. Tests (all of test_cuda_attention on 2, the Sm90 ones on 0, 1, 3), then the
# benchmark alternating base and the variants, then ncu of variant 2's causal hd128 if time is left.
set -u
export DUET_GPUBIN_DIR=.gpubin-fwd
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader
t0=$(date +%s)
O=/tmp/o; mkdir -p $O
DUET_ATTENTION_SM90_VARIANT=2 timeout 110 $GPUBIN/test_cuda_attention > $O/tests_v2.log 2>&1 & p2=$!
DUET_ATTENTION_SM90_VARIANT=0 timeout 110 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*' > $O/tests_v0.log 2>&1 & p0=$!
DUET_ATTENTION_SM90_VARIANT=1 timeout 110 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*' > $O/tests_v1.log 2>&1 & p1=$!
DUET_ATTENTION_SM90_VARIANT=3 timeout 110 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*' > $O/tests_v3.log 2>&1 & p3=$!
wait $p2; r2=$?; wait $p0; r0=$?; wait $p1; r1=$?; wait $p3; r3=$?
echo "tests rc v0=$r0 v1=$r1 v2=$r2 v3=$r3 ($(( $(date +%s) - t0 )) s)"
for v in 0 1 2 3; do echo "-- v$v"; grep -E "^\[  (FAILED|PASSED)|OK \]|Failure|worst" $O/tests_v$v.log | tail -20; done
nvidia-smi --query-gpu=clocks.sm --format=csv,noheader -lms 250 > $O/clocks.txt 2>&1 & smi=$!
for v in base 0 1 2 3 base 2 1 3 0 base 2; do
  el=$(( $(date +%s) - t0 )); if [ $el -gt 250 ]; then echo "=== $v skipped (time $el s)"; continue; fi
  echo "=== $v"
  if [ $v = base ]; then DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 40 $GPUBIN/bench_base 2>&1
  else DUET_ATTENTION_SM90_VARIANT=$v DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 40 $GPUBIN/bench_attention_cuda 2>&1; fi
done > $O/bench_all.txt
kill $smi
echo "benches done ($(( $(date +%s) - t0 )) s)"; sort $O/clocks.txt | uniq -c | sort -rn | head -3
awk '/^===/{v=$2} /^(causal|capybara|hh-rlhf|tulu|metamath|tldr|ultra)/{printf "%s %s %s %s\n", v, $1, $2, $5}' $O/bench_all.txt > $O/fwd_summary.txt
awk '{k=$2" "$3; a[k]=a[k]" "$1"="$4} END{for (k in a) print k": "a[k]}' $O/fwd_summary.txt | sort
el=$(( $(date +%s) - t0 ))
if [ $el -lt 215 ]; then
  DUET_ATTENTION_SM90_VARIANT=2 DUET_ATTENTION_SM90=1 timeout $(( 280 - el )) ncu --clock-control none --kernel-name regex:forward_sm90 --launch-skip 1 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight \
    -o /tmp/rep $GPUBIN/bench_attention_cuda --only causal --repeats 1 > $O/ncu_log.txt 2>&1
  echo "ncu rc=$? ($(( $(date +%s) - t0 )) s)"
  ncu -i /tmp/rep.ncu-rep --page details > $O/ncu_details.txt 2>&1
  grep -E "Duration|SM Frequency|Issue Slots|Tensor" $O/ncu_details.txt | head
  ncu -i /tmp/rep.ncu-rep --page source --csv --print-source sass 2>/dev/null | xz -T0 -6 > $O/source_v2.csv.xz
fi
tar -cJf $OUT/call1.tar.xz -C $O .
echo "total $(( $(date +%s) - t0 )) s"
