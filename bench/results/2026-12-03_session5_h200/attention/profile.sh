#!/usr/bin/env bash
# Per-kernel times (ncu) of the backward on the causal row, both kernel sets; then
# one launch of each Hopper backward kernel at hd128 with ncu's main sections; SASS check.
set -u
source scripts/gpu/unpack_binaries.sh || exit 1
B=$GPUBIN/bench_attention_cuda
for v in 0 1; do
  DUET_ATTENTION_SM90=$v DUET_ATTENTION_BWD_SM90=$v timeout 100 ncu --clock-control none \
    --kernel-name regex:'dkdv|dq_|delta|forward' --metrics gpu__time_duration.sum \
    "$B" --only causal --repeats 1 > "$OUT/ncu_time_$v.txt" 2>&1
  awk -v v=$v '/CC 9.0/ { if (match($0, /[a-z_0-9]+_kernel<[0-9]+>/)) k = substr($0, RSTART, RLENGTH) }
    /gpu__time_duration/ { t[k] = t[k] " " $NF } END { for (k in t) print "sm90=" v, k, t[k] }' "$OUT/ncu_time_$v.txt"
done
DUET_ATTENTION_BWD_SM90=1 timeout 150 ncu --clock-control none --kernel-name regex:'dkdv_sm90|dq_sm90' \
  --launch-count 2 --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  --section WarpStateStats --section SchedulerStats --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio "$B" --only causal --repeats 1 \
  > "$OUT/ncu_sections.txt" 2>&1
grep -E "dkdv|dq_sm90|Duration|SM Active|Elapsed Cycles|Issue Slots|Eligible" "$OUT/ncu_sections.txt" | head -30
awk '/CC 9.0/ { if (match($0, /[a-z_0-9]+_kernel<[0-9]+>/)) k = substr($0, RSTART, RLENGTH) }
  /issue_stalled/ && $NF > 0.2 { sub(/smsp__average_warps_issue_stalled_/, ""); print k, $1, $NF }' "$OUT/ncu_sections.txt"
cuobjdump --dump-sass "$GPUBIN/test_cuda_attention" > /tmp/sass.txt 2>/dev/null
echo "HGMMA instructions: $(grep -c HGMMA /tmp/sass.txt), HMMA: $(grep -c HMMA /tmp/sass.txt)"
