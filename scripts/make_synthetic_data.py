#!/usr/bin/env python3
"""Generates synthetic preference datasets whose lengths follow the six dataset
profiles of the prefix-sharing paper (BRIEF §2), for benchmarks and tests.

  scripts/make_synthetic_data.py --profile NAME|all --out FILE|DIR [--examples 2000]
      [--seed 1] [--format pretokenized|standard|conversational] [--equal-responses]
      [--length-sigma 0.5] [--ratio-sigma 0] [--vocab-size 32000]

A profile is (median length, prompt/completion ratio r), lengths in tokens:

  capybara 1160 1.59 | hh-rlhf 186 2.15 | metamath-dpo 872 3.91
  tldr 416 11.14 | tulu-helpsteer 775 6.34 | ultrafeedback 409 0.42

The median length is that of one paired sequence, prompt + one response. Per
example a sequence length n is drawn log-normally around the median
(--length-sigma), the example's ratio is r (times a log-normal factor with
--ratio-sigma, 0 = exactly r), the prompt gets round(n*r/(1+r)) tokens and the
chosen response the rest; the rejected one is as long with --equal-responses,
else drawn log-normally (sigma 0.3) around it. With equal responses and
--ratio-sigma 0 the shared/paired token ratio is (2r+2)/(r+2) up to rounding.

Formats:
  pretokenized    prompt_input_ids/chosen_input_ids/rejected_input_ids with exact
                  lengths (random ids in [100, vocab-size)); needs no tokenizer
  standard        English-like text from a fixed word list, about one token per
                  word with BPE tokenizers (lengths are approximate)
  conversational  the same text as one user and one assistant message

--profile all writes DIR/<profile>.jsonl for every profile. Deterministic for a
given seed (random.Random). Standard library only.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys

PROFILES = {
    "capybara": (1160, 1.59),
    "hh-rlhf": (186, 2.15),
    "metamath-dpo": (872, 3.91),
    "tldr": (416, 11.14),
    "tulu-helpsteer": (775, 6.34),
    "ultrafeedback": (409, 0.42),
}

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there one all we their been has when who will more no if out so said what up its about into "
    "than them can only other new some could time these two may then do first any my now such like our over man me "
    "even most made after also did many before must through back years where much your way well down should because "
    "each just those people how too little state good very make world still own see men work long get here between "
    "both life being under never day same another know while last might us great old year off come since against go "
    "came right used take three small large water house place number part found next light city river model data "
    "answer question reason simple clear better method result value system order point group problem study change"
).split()


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma)) if sigma > 0 else median


def text(rng: random.Random, tokens: int) -> str:
    """About `tokens` BPE tokens of word salad in sentences."""
    words, out = 0, []
    while words < tokens:
        n = min(rng.randint(6, 16), max(1, tokens - words))
        sentence = [rng.choice(WORDS) for _ in range(n)]
        sentence[0] = sentence[0].capitalize()
        out.append(" ".join(sentence) + ".")
        words += n + 1  # the period is a token too
    return " ".join(out)


def example(rng: random.Random, median: int, ratio: float, args) -> tuple[int, int, int]:
    n = max(3, round(lognormal(rng, median, args.length_sigma)))
    r = lognormal(rng, ratio, args.ratio_sigma)
    prompt = min(n - 1, max(1, round(n * r / (1.0 + r))))
    chosen = n - prompt
    rejected = chosen if args.equal_responses else max(1, round(lognormal(rng, chosen, 0.3)))
    return prompt, chosen, rejected


def line(rng: random.Random, lengths: tuple[int, int, int], args) -> dict:
    p, c, r = lengths
    if args.format == "pretokenized":
        ids = lambda n: [rng.randrange(100, args.vocab_size) for _ in range(n)]  # noqa: E731
        chosen = ids(c)
        rejected = ids(r)
        while rejected == chosen:
            rejected = ids(r)
        return {"prompt_input_ids": ids(p), "chosen_input_ids": chosen, "rejected_input_ids": rejected}
    prompt, chosen, rejected = text(rng, p), text(rng, c), text(rng, r)
    while rejected == chosen:
        rejected = text(rng, r)
    if args.format == "standard":
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def write_profile(name: str, path: str, args) -> None:
    median, ratio = PROFILES[name]
    # One stream per profile, so profiles do not change when others are added.
    rng = random.Random(f"{args.seed}/{name}")
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(args.examples):
            f.write(json.dumps(line(rng, example(rng, median, ratio, args), args)) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True, choices=[*PROFILES, "all"])
    ap.add_argument("--out", required=True, help="output file (a folder with --profile all)")
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=["pretokenized", "standard", "conversational"], default="pretokenized")
    ap.add_argument("--equal-responses", action="store_true", help="rejected as long as chosen")
    ap.add_argument("--length-sigma", type=float, default=0.5, help="log-normal spread of sequence lengths")
    ap.add_argument("--ratio-sigma", type=float, default=0.0, help="log-normal spread of per-example ratios")
    ap.add_argument("--vocab-size", type=int, default=32000, help="pretokenized ids are below this")
    args = ap.parse_args()
    if args.examples < 1 or args.vocab_size <= 101:
        sys.exit("--examples must be >= 1 and --vocab-size > 101")

    if args.profile == "all":
        os.makedirs(args.out, exist_ok=True)
        for name in PROFILES:
            write_profile(name, os.path.join(args.out, f"{name}.jsonl"), args)
    else:
        write_profile(args.profile, args.out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
