#!/usr/bin/env python3
"""Records Hugging Face `tokenizers` output on the tokenizer corpus, so that CI
(which has no `tokenizers`) checks exact parity on every run.

  scripts/record_hf_golden.py --tokenizers ASSETS/tokenizers/{llama3,qwen3,llama2,mistral} \\
      --corpus tests/data/tokenizer_corpus.jsonl --out tests/data/hf_golden

Writes OUT/<family>.jsonl.gz, one JSON object per corpus line:
  {"ids": encode(text, add_special_tokens=False).ids,
   "ids_special": encode(text, add_special_tokens=True).ids,
   "decode": [decode(ids, False), decode(ids, True),
              decode(ids_special, False), decode(ids_special, True)]}
(the booleans are skip_special_tokens). Run where `tokenizers` is installed (the
GPU test machine); tests/tokenizer/test_hf_golden.cpp reads the files.
"""
import argparse
import gzip
import json
import os

import tokenizers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizers", nargs="+", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f.read().split("\n") if line]
    os.makedirs(args.out, exist_ok=True)
    for tdir in args.tokenizers:
        tok = tokenizers.Tokenizer.from_file(os.path.join(tdir, "tokenizer.json"))
        family = os.path.basename(os.path.normpath(tdir))
        path = os.path.join(args.out, family + ".jsonl.gz")
        # mtime=0 keeps the file byte-identical across runs.
        with gzip.GzipFile(path, "wb", mtime=0) as out:
            for text in texts:
                ids = tok.encode(text, add_special_tokens=False).ids
                ids_special = tok.encode(text, add_special_tokens=True).ids
                rec = {"ids": ids, "ids_special": ids_special,
                       "decode": [tok.decode(ids, skip_special_tokens=False), tok.decode(ids, skip_special_tokens=True),
                                  tok.decode(ids_special, skip_special_tokens=False),
                                  tok.decode(ids_special, skip_special_tokens=True)]}
                out.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
        print(f"{family}: {len(texts)} lines -> {path} (tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()
