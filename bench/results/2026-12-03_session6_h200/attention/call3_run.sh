#!/usr/bin/env bash
# Call 3 (attn-fwd helper): tests of E (TMA) and D (cp.async), benches base/E/D/E2/mma, ncu per-kernel times base vs E.
set -u
export DUET_GPUBIN_DIR=.gpubin-attn
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
t0=$(date +%s)
timeout 100 $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.*' > $OUT/sm90_tests_E.log 2>&1; rcE=$?; echo "tests E rc=$rcE"
grep -E "OK \]|FAILED|worst" $OUT/sm90_tests_E.log | head -12
timeout 100 $GPUBIN/test_D --gtest_filter='CudaAttentionSm90.*' > $OUT/sm90_tests_D.log 2>&1; echo "tests D rc=$? ($(( $(date +%s) - t0 )) s)"
grep -E "FAILED|PASSED" $OUT/sm90_tests_D.log | head -5
if [ $rcE -ne 0 ]; then
  timeout 60 compute-sanitizer --tool memcheck $GPUBIN/test_cuda_attention --gtest_filter='CudaAttentionSm90.CausalRow' > $OUT/memcheck_E.log 2>&1
  grep -m 8 -E "Invalid|ERROR SUMMARY|at 0x|by thread|error" $OUT/memcheck_E.log
fi
{
for v in base E D E2 mma; do
  case $v in base) b=bench_base;; E|mma) b=bench_attention_cuda;; D) b=bench_D;; E2) b=bench_E2;; esac
  e=1; [ $v = mma ] && e=0
  echo "=== $v ($b, SM90=$e)"
  DUET_ATTENTION_SM90=$e DUET_ATTENTION_BWD_SM90=$e timeout 60 $GPUBIN/$b 2>&1
done
} > $OUT/bench_all.txt
echo "benches done ($(( $(date +%s) - t0 )) s)"
grep -E "===|causal|capybara" $OUT/bench_all.txt
for b in bench_base bench_attention_cuda; do
  DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 60 ncu --clock-control none --kernel-name regex:'dkdv|dq_|delta|forward' \
    --metrics gpu__time_duration.sum $GPUBIN/$b --only causal --repeats 1 > /tmp/ncu_$b.txt 2>&1
  awk -v b=$b '/CC 9.0/ { if (match($0, /[a-z_0-9]+_kernel<[0-9]+>/)) k = substr($0, RSTART, RLENGTH) }
    /gpu__time_duration/ { t[k] = t[k] " " $NF } END { for (k in t) print b, k, t[k] }' /tmp/ncu_$b.txt
done | sort > $OUT/ncu_times.txt
cat $OUT/ncu_times.txt
echo "total $(( $(date +%s) - t0 )) s"
