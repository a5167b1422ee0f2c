#!/usr/bin/env bash
# The README's "main job on a small default": what duet can do today, on real
# files, in under a minute. Grows with the project (data stats, then training).
set -euo pipefail
cd "$(dirname "$0")/.."
duet=build/duet
[ -x "$duet" ] || { echo "demo: build first (see README: Install)" >&2; exit 1; }
assets=.cache/assets
scripts/fetch_test_assets.sh "$assets" >/dev/null
tok="$assets/tokenizers/llama3"

echo "== duet tokenize: Llama 3 tokenizer, three texts (ids as HF tokenizers gives them)"
printf '%s\n' "Prefix sharing computes the prompt once." "  two spaces, digits 12345, emoji 🦙" \
  "<|begin_of_text|>special tokens inside text" | "$duet" tokenize --tokenizer "$tok"
echo "== and back (--decode)"
printf '%s\n' "[14672,11821,58303,279,10137,3131,13]" | "$duet" tokenize --tokenizer "$tok" --decode
