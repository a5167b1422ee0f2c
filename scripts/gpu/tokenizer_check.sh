#!/usr/bin/env bash
# On the GPU test machine (HF tokenizers installed): builds duet, runs the
# tokenizer tests, compares `duet tokenize` with HF tokenizers on the corpus,
# re-records the HF golden files and checks they equal the committed ones, and
# benchmarks encoding throughput side by side with HF. Logs and reports go to $OUT.
# Carry: .debs .cache/assets/tokenizers .cache/assets/npm_cases .cache/bench
set -uo pipefail
source scripts/gpu/setup.sh "util;tokenizer;cli"
T=.cache/assets/tokenizers
fams=(llama3 qwen3 llama2 mistral)
echo "== unit and real-tokenizer tests"
for t in build-gpu/tests/util/test_util build-gpu/tests/tokenizer/test_tokenizer_units build-gpu/tests/tokenizer/test_tokenizer_real; do
  $t > "$OUT/$(basename $t).log" 2>&1; echo "$(basename $t): $(tail -1 $OUT/$(basename $t).log)"
done
echo "== duet vs HF tokenizers"
python3 scripts/compare_hf_tokenizers.py --duet build-gpu/duet --tokenizers "${fams[@]/#/$T/}" \
  --corpus tests/data/tokenizer_corpus.jsonl --npm-cases .cache/assets/npm_cases --out "$OUT/compare_report.json" \
  > "$OUT/compare.txt" 2>&1; echo "compare exit $?"; tail -1 "$OUT/compare.txt"
python3 scripts/record_hf_golden.py --tokenizers "${fams[@]/#/$T/}" --corpus tests/data/tokenizer_corpus.jsonl \
  --out /tmp/golden > /dev/null
for f in "${fams[@]}"; do cmp -s <(zcat /tmp/golden/$f.jsonl.gz) <(zcat tests/data/hf_golden/$f.jsonl.gz) \
  && echo "golden $f: same" || echo "golden $f: DIFFERS"; done
echo "== throughput (5 MB of text), duet then HF, per tokenizer"
for f in llama3 qwen3 llama2; do
  build-gpu/bench/bench_tokenizer --tokenizer $T/$f --text .cache/bench/bench_text.jsonl | tee -a "$OUT/bench.jsonl"
  python3 bench/hf_tokenizer_bench.py --tokenizer $T/$f --text .cache/bench/bench_text.jsonl | tee -a "$OUT/bench.jsonl"
done
