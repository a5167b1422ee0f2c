# Run by the lead as: sed '/timeout 120 ncu/,/source.csv.xz/d' on this script (the ncu part left out for device time),
# with OUT=$OUT/attn, beside tuning/run.sh in the same call; bundle of 067184e + variants in .gpubin-attn (helper's pack.sh).
#!/usr/bin/env bash
# Call 2 (attn-fwd-8 helper): all attention tests of the final code (test_cuda_attention:
# persistent grid + the softmax kept under O += P V + 3 K stages at hd128) and of FK4 (4 K
# stages at hd64), at once; benches base (2be971c) / P / F (P + the softmax under P V) /
# final (F + 3 K stages at hd128, the tile code before the wait) / FK4, then base and final
# again; ncu of the final hd128 forward (source level).
set -u
export DUET_GPUBIN_DIR=.gpubin-attn
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit
t0=$(date +%s)
timeout 100 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttention*' > $OUT/tests_final.log 2>&1 & p1=$!
timeout 100 $GPUBIN/test_FK4 --gtest_filter='CudaAttentionSm90.*' > $OUT/tests_FK4.log 2>&1 & p2=$!
wait $p1; rc1=$?; wait $p2; rc2=$?
echo "tests final rc=$rc1 FK4 rc=$rc2 ($(( $(date +%s) - t0 )) s)"
grep -E "OK \]|FAILED|PASSED" $OUT/tests_final.log | tail -12; grep -E "FAILED|PASSED" $OUT/tests_FK4.log | tail -3
if [ $rc1 -ne 0 ]; then
  timeout 60 compute-sanitizer --tool memcheck $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.PersistentGridWithFewCtas' > $OUT/memcheck_final.log 2>&1
  grep -m 8 -E "Invalid|ERROR SUMMARY|at 0x|by thread" $OUT/memcheck_final.log
fi
nvidia-smi --query-gpu=clocks.sm --format=csv,noheader -lms 200 > $OUT/clocks.txt 2>&1 & smi=$!
{
for v in base P F attention_cuda FK4 base attention_cuda; do
  echo "=== $v"; DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 60 $GPUBIN/bench_$v 2>&1
done
} > $OUT/bench_all.txt
kill $smi
echo "benches done ($(( $(date +%s) - t0 )) s)"; sort $OUT/clocks.txt | uniq -c | sort -rn | head -3
grep -E "===|causal|capybara|hh-rlhf" $OUT/bench_all.txt
DUET_ATTENTION_SM90=1 timeout 120 ncu --clock-control none --kernel-name regex:forward_sm90 --launch-skip 1 --launch-count 1 \
  --section SourceCounters --section WarpStateStats --section SpeedOfLight --section ComputeWorkloadAnalysis \
  -o /tmp/rep $GPUBIN/bench_attention_cuda --only causal --repeats 1 > /tmp/ncu_log.txt 2>&1
echo "ncu rc=$? ($(( $(date +%s) - t0 )) s)"
ncu -i /tmp/rep.ncu-rep --page details > $OUT/ncu_details.txt 2>&1
grep -E "Duration|SM Frequency|Issue Slots|Warp Cycles|Tensor" $OUT/ncu_details.txt | head
ncu -i /tmp/rep.ncu-rep --page source --csv --print-source sass > /tmp/source.csv 2>&1
xz -T0 -6 -c /tmp/source.csv > $OUT/source.csv.xz
echo "total $(( $(date +%s) - t0 )) s"
