#!/usr/bin/env bash
# On the GPU machine, after a build (scripts/gpu/setup.sh): duet bench and the
# PyTorch peer (bench/peer_pytorch.py) on the SAME examples — the pre-tokenized
# files of scripts/make_synthetic_data.py — in one run, then one table from
# both JSON-lines files (scripts/gpu/side_by_side.py).
#   ARCH=llama-3.2-1b PROFILES="hh-rlhf capybara" EXAMPLES=64 STEPS=4 WARMUP=1 \
#     [DUET_ARGS=...] [PEER_ARGS=...] [PEER_TIMEOUT=s] scripts/gpu/bench_side_by_side.sh
set -uo pipefail
OUT=${OUT:-/tmp/duet-out}
ARCH=${ARCH:-llama-3.2-1b}
PROFILES=${PROFILES:-hh-rlhf capybara}
EXAMPLES=${EXAMPLES:-64}
STEPS=${STEPS:-4}
WARMUP=${WARMUP:-1}
data=/tmp/duet-bench-data
mkdir -p "$data" "$OUT"
case $ARCH in  # the presets' vocabularies (src/model/presets.cpp)
  llama-*) vocab=128256 ;; qwen2.5-7b) vocab=152064 ;; mistral-7b) vocab=32000 ;;
  *) echo "unknown ARCH $ARCH"; exit 1 ;;
esac
for p in $PROFILES; do
  python3 scripts/make_synthetic_data.py --profile "$p" --out "$data/$p.jsonl" --examples 2048 --vocab-size "$vocab"
  build-gpu/duet bench --arch "$ARCH" --data "$data/$p.jsonl" --examples-per-step "$EXAMPLES" --steps "$STEPS" \
    --warmup "$WARMUP" --layout paired+packed,shared+packed ${DUET_ARGS:-} --json "$OUT/duet_steps.jsonl" \
    2>&1 | tee -a "$OUT/duet_steps.txt"
done
timeout "${PEER_TIMEOUT:-900}" python3 bench/peer_pytorch.py --arch "$ARCH" --profile "${PROFILES// /,}" \
  --data-dir "$data" --layout paired-packed,shared-packed --examples-per-step "$EXAMPLES" --steps "$STEPS" \
  --warmup "$WARMUP" ${PEER_ARGS:-} --json "$OUT/peer_steps.jsonl" > "$OUT/peer_steps.txt" 2>&1
echo "peer exit $?"
python3 scripts/gpu/side_by_side.py "$OUT/duet_steps.jsonl" "$OUT/peer_steps.jsonl"
