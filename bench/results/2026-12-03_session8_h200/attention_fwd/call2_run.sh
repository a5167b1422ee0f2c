#!/usr/bin/env bash
# Call 2 (attn-fwd-9 helper): run as `bash .gpubin-fwd/run2.sh` with carry [".gpubin-fwd"] (bundle: the
# exploration build 4f82dee as test_cuda_attention / bench_attention_cuda, main 87c2259 as test_base /
# bench_base). Variants by DUET_ATTENTION_SM90_VARIANT: 0 = call 1's best (K warp + V thread apart,
# stages as base, each tile classified one after the other); 4 = 0 with the warp-wide tile scan (lane l
# classifies tile base + l, ballots, next() a bit search; V by the whole warp 1); 5 = 4 with 3 K stages
# at hd128 (4 at hd64); 6 = 4 + the item edges merged; 7 = 5 + the merge. Tests (all of
# test_cuda_attention on 4, the Sm90 ones on 0, 5, 6, 7), the benchmark alternating base and the
# variants, ncu of 4 and 5 (causal hd128).
set -u
export DUET_GPUBIN_DIR=.gpubin-fwd
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader
t0=$(date +%s)
O=/tmp/o; mkdir -p $O
DUET_ATTENTION_SM90_VARIANT=4 timeout 110 $GPUBIN/test_cuda_attention > $O/tests_v4.log 2>&1 & p4=$!
for v in 0 5 6 7; do
  DUET_ATTENTION_SM90_VARIANT=$v timeout 110 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*' > $O/tests_v$v.log 2>&1 & eval p$v=\$!
done
wait $p4; r4=$?; wait $p0; r0=$?; wait $p5; r5=$?; wait $p6; r6=$?; wait $p7; r7=$?
echo "tests rc v0=$r0 v4=$r4 v5=$r5 v6=$r6 v7=$r7 ($(( $(date +%s) - t0 )) s)"
for v in 4 0 5 6 7; do echo "-- v$v"; grep -E "^\[  (FAILED|PASSED)|OK \]|Failure|worst" $O/tests_v$v.log | tail -20; done
nvidia-smi --query-gpu=clocks.sm --format=csv,noheader -lms 250 > $O/clocks.txt 2>&1 & smi=$!
for v in base 0 4 5 6 7 base 7 6 5 4 0 base 4 5 0 6 base 4; do
  el=$(( $(date +%s) - t0 )); if [ $el -gt 210 ]; then echo "=== $v skipped (time $el s)"; continue; fi
  echo "=== $v"
  if [ $v = base ]; then DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 40 $GPUBIN/bench_base 2>&1
  else DUET_ATTENTION_SM90_VARIANT=$v DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 40 $GPUBIN/bench_attention_cuda 2>&1; fi
done > $O/bench_all.txt
kill $smi
echo "benches done ($(( $(date +%s) - t0 )) s)"; sort $O/clocks.txt | uniq -c | sort -rn | head -3
awk '/^===/{v=$2} /^(causal|capybara|hh-rlhf|tulu|metamath|tldr|ultra)/{printf "%s %s %s %s\n", v, $1, $2, $5}' $O/bench_all.txt > $O/fwd_summary.txt
awk '{k=$2" "$3; a[k]=a[k]" "$1"="$4} END{for (k in a) print k": "a[k]}' $O/fwd_summary.txt | sort
for v in 4 5; do
  el=$(( $(date +%s) - t0 )); if [ $el -gt 255 ]; then echo "ncu $v skipped"; continue; fi
  DUET_ATTENTION_SM90_VARIANT=$v DUET_ATTENTION_SM90=1 timeout $(( 285 - el )) ncu --clock-control none --kernel-name regex:forward_sm90 --launch-skip 1 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight \
    -o /tmp/rep$v $GPUBIN/bench_attention_cuda --only causal --repeats 1 > $O/ncu_log_v$v.txt 2>&1
  echo "ncu v$v rc=$? ($(( $(date +%s) - t0 )) s)"
  ncu -i /tmp/rep$v.ncu-rep --page details > $O/ncu_details_v$v.txt 2>&1
  grep -E "Duration|SM Frequency|Compute \(SM\)" $O/ncu_details_v$v.txt | head -4
  ncu -i /tmp/rep$v.ncu-rep --page source --csv --print-source sass 2>/dev/null | xz -T0 -6 > $O/source_v$v.csv.xz
done
tar -cJf $OUT/call2.tar.xz -C $O .
echo "total $(( $(date +%s) - t0 )) s"
