#!/usr/bin/env bash
# Session 9, branch bwd-dq-split (the backward's dQ pass with K and V loaded by two producer warps
# apart, as the forward since session 8). Not run yet. Repository root (main); carry
# [".gpubin", ".gpubin-dq"] after
#   scripts/gpu/pack_binaries.sh                     (main: .gpubin)
#   (worktree of bwd-dq-split) DUET_BUILD_DIR=build DUET_GPUBIN_DIR=<main>/.gpubin-dq \
#     scripts/gpu/pack_binaries.sh test_cuda_attention bench_attention_cuda
# (a copy of this file is put at .gpubin-dq/run.sh, so from main's tree: `bash .gpubin-dq/run.sh`).
# The branch's attention tests (dq must stay
# bitwise equal to the mma.sync backward's), then the attention benchmark main / branch
# alternating twice: backward TFLOP/s (column 7) per row. About 1.5 minutes.
set -u
export OUT=${OUT:-/tmp/duet-out}
mkdir -p "$OUT"
source scripts/gpu/unpack_binaries.sh > /dev/null || exit 1
dq=/tmp/gpubin-dq
rm -rf $dq && mkdir -p $dq && tar -xJf .gpubin-dq/bundle.tar.xz -C $dq || { echo "no .gpubin-dq bundle"; exit 1; }
export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$dq/lib"  # the same libraries as main's bundle; a fallback
echo "main binaries: $(cat "$GPUBIN/commit"); dq-split binaries: $(cat $dq/commit)"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader
t0=$(date +%s)
timeout 60 $dq/test_cuda_attention > "$OUT/test_dq_attention.log" 2>&1
echo "test_dq_attention: exit $? ($(grep -E '^\[  (PASSED|FAILED)' "$OUT/test_dq_attention.log" | tr '\n' ' ')) at $(( $(date +%s) - t0 )) s"
grep -E "^\[  FAILED|Failure" -A3 "$OUT/test_dq_attention.log" | head -16
bwd_rows() { grep -E "^(causal|capybara|hh-rlhf|tulu|metamath|tldr|ultra)" "$1" | awk '{printf "%s/%s %s  ", $1, $2, $7}'; echo; }
for pass in 1 2; do  # backward TFLOP/s, main and the branch alternating
  for who in main dq; do
    el=$(( $(date +%s) - t0 )); if [ $el -gt 150 ]; then echo "$who $pass skipped (time $el s)"; continue; fi
    bin=$GPUBIN/bench_attention_cuda; [ $who = dq ] && bin=$dq/bench_attention_cuda
    DUET_ATTENTION_SM90=1 DUET_ATTENTION_BWD_SM90=1 timeout 40 $bin > "$OUT/bench_attention_${who}_$pass.txt" 2>&1
    echo -n "$who $pass (exit $?): "; bwd_rows "$OUT/bench_attention_${who}_$pass.txt"
  done
done
# One line per row and head dim: backward TFLOP/s main_1 dq_1 main_2 dq_2.
for f in main_1 dq_1 main_2 dq_2; do
  [ -f "$OUT/bench_attention_$f.txt" ] || continue
  awk -v f=$f '/^(causal|capybara|hh-rlhf|tulu|metamath|tldr|ultra)/{print $1"/"$2, f"="$7}' "$OUT/bench_attention_$f.txt"
done | awk '{a[$1]=a[$1]" "$2} END{for (k in a) print k":"a[k]}' | sort | tee "$OUT/bwd_summary.txt"
echo "total $(( $(date +%s) - t0 )) s"
tar -czf /tmp/logs.tgz -C "$OUT" . && find "$OUT" -mindepth 1 -delete && mv /tmp/logs.tgz "$OUT/"
