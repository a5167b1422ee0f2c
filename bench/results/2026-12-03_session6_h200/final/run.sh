#!/usr/bin/env bash
# The sixth session's final device call (run from the repository root with the
# bundle of the commit under test in .gpubin): every CUDA test, the ZeRO
# end-to-end check, the replay of the seed that failed the attention criterion
# on an exact-zero reference, and whole steps with the mma.sync forward (0)
# beside the Hopper forward (1), side by side in one call.
set -u
export OUT=${OUT:-/tmp/duet-out}
mkdir -p "$OUT"
TEST_TIMEOUT=300 scripts/gpu/cuda_check.sh tests zero3 > "$OUT/check.log" 2>&1
grep -E "^(tests|zero3):|stage[0-9]|estimate" "$OUT/check.log"
source scripts/gpu/unpack_binaries.sh > /dev/null
DUET_TEST_SEED=17644565860551963230 timeout 120 "$GPUBIN/test_cuda_attention" \
  --gtest_filter='CudaAttentionSm90.MatchesCpuReferenceOnRandomForests' > "$OUT/seed_replay.log" 2>&1
echo "seed replay: exit $? ($(grep -c 'used=0' "$OUT/seed_replay.log") all-padding cases)"
for v in 0 1; do
  DUET_ATTENTION_SM90=$v timeout 200 "$GPUBIN/duet" bench --arch llama-3.2-1b --profile hh-rlhf,capybara \
    --layout shared+packed --examples-per-step 64 --breakdown > "$OUT/bench1b_fwd$v.txt" 2>&1
done
for v in 0 1; do
  DUET_ATTENTION_SM90=$v timeout 200 "$GPUBIN/duet" bench --arch llama-3.1-8b --no-optimizer --profile capybara \
    --layout shared+packed --examples-per-step 32 --steps 2 --warmup 1 --breakdown > "$OUT/bench8b_fwd$v.txt" 2>&1
done
for f in "$OUT"/bench1b_fwd0.txt "$OUT"/bench1b_fwd1.txt "$OUT"/bench8b_fwd0.txt "$OUT"/bench8b_fwd1.txt; do
  echo "== $(basename "$f")"; grep -E "packed|ms per step" "$f"
done
