#!/usr/bin/env python3
"""Writes benchmark text for the tokenizer: ~5 MB of real English text as JSONL (one
JSON string per line, a few hundred characters each).

  bench/make_bench_text.py OUT_FILE [--mb 5] [--min-chars 300] [--max-chars 600]

Sources (Debian packages): WordNet glosses (/usr/share/wordnet/data.*, package
wordnet-base) and fortunes (/usr/share/games/fortunes, package fortunes; multi-line
entries keep their newlines). The units (one gloss or one fortune each) are put in a
fixed pseudo-random order (sha256 of the text); units longer than --max-chars are
dropped and the rest are joined (by a space, or by a newline next to a multi-line
fortune) until a line has at least --min-chars characters. If the units run out
before --mb is reached they are used again in another order. Deterministic: the
same installed data gives the same file.

The GPU machine has neither package: make the file here and carry it there (see
docs/tokenizer-testing.md).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from debian_text import FORTUNE_FILES, fortune_entries, wordnet_entries  # noqa: E402


def units() -> list[str]:
    out = []
    for name in FORTUNE_FILES:
        for e in fortune_entries(name):
            e = e.strip("\n")
            if e.strip() and len(e) <= 2000:
                out.append(e)
    for pos in ("noun", "verb", "adjective", "adverb"):
        out += [gloss.strip() for _, gloss in wordnet_entries(pos)]
    return sorted(set(out))


def ordered(items: list[str], round_: int) -> list[str]:
    salt = f"bench-{round_}:".encode()
    return sorted(items, key=lambda s: hashlib.sha256(salt + s.encode("utf-8")).digest())


def main() -> int:
    ap = argparse.ArgumentParser(description="Write ~5 MB of JSONL benchmark text.")
    ap.add_argument("out", help="output file (JSONL)")
    ap.add_argument("--mb", type=float, default=5.0, help="UTF-8 megabytes of text (1e6 bytes)")
    ap.add_argument("--min-chars", type=int, default=300)
    ap.add_argument("--max-chars", type=int, default=600)
    a = ap.parse_args()

    src = units()
    target = int(a.mb * 1e6)
    lines: list[str] = []
    total = 0
    round_ = 0
    while total < target:
        cur = ""
        for u in ordered(src, round_):
            if total >= target:
                break
            if len(u) > a.max_chars:
                continue
            cur = u if not cur else cur + ("\n" if "\n" in u or "\n" in cur else " ") + u
            if len(cur) >= a.min_chars:
                lines.append(cur)
                total += len(cur.encode("utf-8"))
                cur = ""
        round_ += 1
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8", newline="") as f:
        for s in lines:
            f.write(json.dumps(s, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n")
    avg = total / max(1, len(lines))
    print(f"make_bench_text: wrote {a.out}: {len(lines)} lines, {total} bytes of text "
          f"(avg {avg:.0f} bytes/line, {round_} pass(es) over {len(src)} units)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
