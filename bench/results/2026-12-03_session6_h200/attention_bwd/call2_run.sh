#!/usr/bin/env bash
# Call 2 (attn-bwd helper): dK/dV variants (DUET_BWD_V; all with the new probabilities and the
# producer's explicit loop): 1 = 3 stages cp.async; 2 = 4 stages; 3 = 4 stages, Q/dO by TMA;
# 4 = 3 + consumer turns; 5 = 4 + dK deferred; 6 = 2 + turns + deferred. dQ (DUET_BWD_VQ):
# 1 plain, 9 consumer turns. Tests of 5/9 (full) and 4/1, 3/1 (no LongRow); benches; ncu times.
set -u
export DUET_GPUBIN_DIR=.gpubin-attn
source scripts/gpu/unpack_binaries.sh || exit 1
cat $GPUBIN/commit; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
t0=$(date +%s)
export DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1
T=$GPUBIN/test_cuda_attention
DUET_BWD_V=5 DUET_BWD_VQ=9 timeout 40 $T --gtest_filter='CudaAttentionSm90.*' > $OUT/tests_v5q9.log 2>&1; echo "tests 5/9 rc=$?"
DUET_BWD_V=4 DUET_BWD_VQ=1 timeout 30 $T --gtest_filter='CudaAttentionSm90.*:-*LongRow*' > $OUT/tests_v4q1.log 2>&1; echo "tests 4/1 rc=$?"
DUET_BWD_V=3 DUET_BWD_VQ=1 timeout 30 $T --gtest_filter='CudaAttentionSm90.*:-*LongRow*' > $OUT/tests_v3q1.log 2>&1; echo "tests 3/1 rc=$? ($(( $(date +%s) - t0 )) s)"
grep -hE "FAILED" $OUT/tests_*.log | head -5
{
for cfg in base 1/1 2/1 3/1 4/1 5/1 6/1 4/9 5/9 3/9; do
  v=${cfg%/*}; q=${cfg#*/}; b=$GPUBIN/bench_attention_cuda; args="--only causal"
  [ $cfg = base ] && b=$GPUBIN/bench_base
  case $cfg in base|5/9|4/9) args="";; esac
  echo "=== $cfg $args"
  DUET_BWD_V=$v DUET_BWD_VQ=$q timeout 30 $b $args 2>&1
done
} > $OUT/bench_all.txt
echo "benches done ($(( $(date +%s) - t0 )) s)"
grep -E "===|causal" $OUT/bench_all.txt
for cfg in 1/1 5/9; do
  DUET_BWD_V=${cfg%/*} DUET_BWD_VQ=${cfg#*/} timeout 30 ncu --clock-control none --kernel-name regex:'dkdv|dq_|delta' \
    --metrics gpu__time_duration.sum $GPUBIN/bench_attention_cuda --only causal --repeats 1 > /tmp/ncu_t.txt 2>&1
  awk -v b=$cfg '/CC 9.0/ { if (match($0, /[a-z_0-9]+_kernel<[0-9, ]+>/)) k = substr($0, RSTART, RLENGTH) }
    /gpu__time_duration/ { t[k] = t[k] " " $NF } END { for (k in t) print b, k, t[k] }' /tmp/ncu_t.txt
done | sort > $OUT/ncu_times.txt
cat $OUT/ncu_times.txt
echo "total $(( $(date +%s) - t0 )) s"
