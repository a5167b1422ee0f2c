#!/usr/bin/env bash
# On the GPU test machine (transformers, torch): builds duet, runs the engine and
# CLI tests, and compares `duet logprobs` with transformers' float32 log-probs on
# random tiny Llama (llama3 RoPE, GQA), Qwen2 (tied, biases) and Mistral models,
# including checkpoints written by `duet init` (scripts/gpu/compare_logprobs.py).
# Logs and the JSON report go to $OUT. Carry: .debs
set -uo pipefail
source scripts/gpu/setup.sh "util;tokenizer;data;layout;model;backend;engine;loss;trainer;cli"
set +e  # setup.sh sets -e; from here on every step reports and the last decides
echo "== engine and CLI tests"
# The CPU suites: with the GPU hidden, duet's default --device auto means the CPU engine they test.
for t in build-gpu/tests/engine/test_engine build-gpu/tests/cli/test_cli_model; do
  CUDA_VISIBLE_DEVICES= $t > "$OUT/$(basename $t).log" 2>&1; echo "$(basename $t): exit $? $(tail -1 $OUT/$(basename $t).log)"
done
echo "== duet logprobs vs transformers"
python3 scripts/gpu/compare_logprobs.py --duet build-gpu/duet --work /tmp/duet-logprobs \
  --out "$OUT/logprobs_report.json" > "$OUT/compare_logprobs.txt" 2>&1
rc=$?
cat "$OUT/compare_logprobs.txt"
echo "compare_logprobs exit $rc"
exit $rc
