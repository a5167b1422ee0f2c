#!/usr/bin/env python3
"""Measures HF `tokenizers` encode throughput, as the reference for duet's tokenizer.

  bench/hf_tokenizer_bench.py --tokenizer DIR --text FILE [--repeats 3] [--add-special]

FILE: JSONL, one JSON string per line (bench/make_bench_text.py). Prints one JSON line:
  single_thread:   encode_batch with RAYON_NUM_THREADS=1 (run in a child process, since
                   the variable must be set before `tokenizers` starts its thread pool)
  encode_loop:     Tokenizer.encode() per line in a Python loop (also one thread;
                   includes the Python call overhead per line)
  all_threads:     encode_batch on all cores (RAYON_NUM_THREADS as inherited, or all)
each with seconds (best of --repeats), tokens/s and MB/s (1e6 bytes of UTF-8 text / s).
Needs only the standard library and `tokenizers`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def read_texts(path: str) -> list[str]:
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [json.loads(line) for line in lines]


def best_of(repeats: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def rates(seconds: float, tokens: int, nbytes: int) -> dict:
    return {"seconds": round(seconds, 4), "tokens_per_s": round(tokens / seconds),
            "mb_per_s": round(nbytes / 1e6 / seconds, 3)}


def measure(args, modes: list[str]) -> dict:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    texts = read_texts(args.text)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    out: dict = {"lines": len(texts), "text_bytes": nbytes}
    add = args.add_special
    # warm-up (thread pool start, caches)
    tok.encode_batch(texts[:200], add_special_tokens=add)
    for mode in modes:
        if mode == "batch":
            secs, encs = best_of(args.repeats, lambda: tok.encode_batch(texts, add_special_tokens=add))
        elif mode == "loop":
            secs, encs = best_of(args.repeats, lambda: [tok.encode(t, add_special_tokens=add) for t in texts])
        else:
            raise ValueError(mode)
        tokens = sum(len(e.ids) for e in encs)
        out["tokens"] = tokens
        out[mode] = rates(secs, tokens, nbytes)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="HF tokenizers encode throughput (JSON line).")
    ap.add_argument("--tokenizer", required=True, help="directory with tokenizer.json")
    ap.add_argument("--text", required=True, help="JSONL text (bench/make_bench_text.py)")
    ap.add_argument("--repeats", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--add-special", action="store_true", help="add_special_tokens=True")
    ap.add_argument("--child", choices=["single"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child == "single":
        # RAYON_NUM_THREADS=1 was set by the parent before this process imported tokenizers
        print(json.dumps(measure(args, ["batch", "loop"])))
        return 0

    cmd = [sys.executable, os.path.abspath(__file__), "--tokenizer", args.tokenizer, "--text", args.text,
           "--repeats", str(args.repeats), "--child", "single"] + (["--add-special"] if args.add_special else [])
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=True)
    single = json.loads(p.stdout.decode().strip().splitlines()[-1])

    import tokenizers
    allt = measure(args, ["batch"])
    if allt["tokens"] != single["tokens"]:
        sys.exit(f"hf_tokenizer_bench: token counts differ: {allt['tokens']} vs {single['tokens']}")
    threads = os.environ.get("RAYON_NUM_THREADS") or str(os.cpu_count())
    result = {
        "tokenizer": os.path.basename(os.path.normpath(args.tokenizer)),
        "tokenizers_version": tokenizers.__version__,
        "python": sys.version.split()[0],
        "text": args.text,
        "lines": single["lines"],
        "text_bytes": single["text_bytes"],
        "tokens": single["tokens"],
        "add_special_tokens": args.add_special,
        "repeats": args.repeats,
        "single_thread": single["batch"],
        "encode_loop": single["loop"],
        "all_threads": dict(allt["batch"], threads=int(threads)),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
