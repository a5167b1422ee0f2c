#!/usr/bin/env bash
# The README's "main job on a small default": prepare the demo preference
# dataset (WordNet definitions: chosen = the true gloss, rejected = another
# word's), show what prefix sharing and packing save on it, then train a tiny
# random Llama for a few DPO steps with both layouts and compare. About a
# minute on two cores. Outputs under .cache/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
duet=build/duet
[ -x "$duet" ] || { echo "demo: build first (see README: Install)" >&2; exit 1; }
scripts/fetch_test_assets.sh .cache/assets >/dev/null
tok=.cache/assets/tokenizers/mistral   # a 32k vocabulary keeps the CPU demo quick
data=data/demo/wordnet_define.jsonl
work=.cache/demo
rm -rf "$work" && mkdir -p "$work"

echo "== 1. what prefix sharing and packing save on $data"
"$duet" data stats --data "$data" --tokenizer "$tok" --pack-tokens 512

echo; echo "== 2. a tiny random Llama (configs/tiny-llama.json) with the Mistral tokenizer"
"$duet" init --config configs/tiny-llama.json --tokenizer "$tok" --out "$work/model" --seed 1

# --device cpu: the fp32 engine, whose two layouts give the same curve to the
# last digits shown (and a tiny model's head dim the GPU kernels lack).
common=(--model "$work/model" --data "$data" --max-steps 8 --batch-size 32 --learning-rate 1e-3
        --beta 0.1 --eval-fraction 0.02 --seed 1 --device cpu)
for run in "paired 0" "shared 512"; do
  set -- $run
  echo; echo "== 3. duet train, layout $1, pack-tokens $2"
  start=$(date +%s%N)
  "$duet" train "${common[@]}" --layout "$1" --pack-tokens "$2" --out "$work/$1"
  echo "   $1: $(( ($(date +%s%N) - start) / 1000000 )) ms wall"
done

echo; echo "== 4. same training, step by step (loss from $work/*/metrics.jsonl)"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
runs = {name: [json.loads(l) for l in open(f"{work}/{name}/metrics.jsonl") if '"loss"' in l] for name in ("paired", "shared")}
print(f"{'step':>4} {'paired loss':>12} {'shared loss':>12}  {'paired ex/s':>11} {'shared ex/s':>11}")
for a, b in zip(runs["paired"], runs["shared"]):
    print(f"{a['step']:>4} {a['loss']:12.6f} {b['loss']:12.6f}  {a['examples_per_second']:11.1f} {b['examples_per_second']:11.1f}")
PY
echo; echo "The trained model is a Hugging Face folder: $work/shared (config.json, model.safetensors, tokenizer)."
