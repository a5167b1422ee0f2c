#!/usr/bin/env python3
"""Builds duet's demo preference datasets from real text: WordNet glosses (Debian
package wordnet-base, /usr/share/wordnet).

  scripts/make_demo_data.py [--out-dir data/demo] [--examples 2500] [--chat-examples 1000]

Each example asks for the meaning of a word; the chosen response is the word's
true WordNet definition, the rejected one the definition of another word of the
same part of speech and lexicographer file (e.g. another animal), so it reads
as plausible but is wrong. Writes:

  OUT/wordnet_define.jsonl   standard format: {"prompt", "chosen", "rejected"} strings
  OUT/wordnet_chat.jsonl     conversational format: message lists; some prompts carry
                             a system message, some are two-turn (an earlier
                             question and its answer come first)

Deterministic: synsets are ordered by the sha256 of their text and all choices
come from random.Random(seed), so the same WordNet files give the same output.
Only the Python standard library is used.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from debian_text import WORDNET_DIR, WORDNET_POS_FILES, wordnet_entries  # noqa: E402
PROMPTS = [
    "Define the word \"{w}\".",
    "What does the {pos} \"{w}\" mean?",
    "Give a short definition of \"{w}\".",
    "In one sentence, what is meant by \"{w}\"?",
    "Explain the meaning of the {pos} \"{w}\".",
]
# Glosses WordNet marks as offensive, and sexual or anatomical ones, are left out
# of a dataset that is shown in the README.
UNWANTED = re.compile(r"offensive|slur|vulgar|obscene|derogatory|disparag|sexual|sex\b|virgin|hymen|genital|"
                      r"penis|vagina|erotic|intercourse|prostitut|breast|buttock|rape|racist|whore", re.I)
SYSTEMS = [
    "You are a helpful dictionary. Answer with a single definition.",
    "You are a concise assistant for English vocabulary.",
]


def synsets():
    """(pos, lexicographer file, word, definition) for every synset with a clean gloss."""
    out = []
    for pos in WORDNET_POS_FILES:
        for head, gloss in wordnet_entries(pos):
            fields = head.split()
            lex_file, word_count = fields[1], int(fields[3], 16)
            words = [fields[4 + 2 * i] for i in range(word_count)]
            word = re.sub(r"\(.*\)$", "", words[0]).replace("_", " ")  # drop adjective markers like (a)
            definition = gloss.split(";")[0].split("\"")[0].strip()
            if len(definition) < 12 or len(word) < 3 or not word.isascii() or not definition.isascii():
                continue
            if UNWANTED.search(gloss) or UNWANTED.search(word):
                continue
            out.append((pos, lex_file, word, definition))
    out.sort(key=lambda s: hashlib.sha256("|".join(s).encode()).hexdigest())
    return out


def sentence(text: str) -> str:
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def pairs(all_synsets, n, rng):
    """n (pos, word, chosen, rejected) with distinct words and a same-file distractor."""
    by_file = {}
    for s in all_synsets:
        by_file.setdefault((s[0], s[1]), []).append(s)
    seen = set()
    out = []
    for pos, lex_file, word, definition in all_synsets:
        if len(out) == n:
            break
        if word in seen:
            continue
        pool = by_file[(pos, lex_file)]
        other = pool[rng.randrange(len(pool))]
        if other[3] == definition or other[2] == word:
            continue
        seen.add(word)
        out.append((pos, word, sentence(definition), sentence(other[3])))
    if len(out) < n:
        sys.exit(f"only {len(out)} usable synsets, asked for {n}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "..", "data", "demo"))
    ap.add_argument("--examples", type=int, default=2500, help="standard-format examples")
    ap.add_argument("--chat-examples", type=int, default=1000, help="conversational examples")
    ap.add_argument("--seed", type=int, default=20241029)
    args = ap.parse_args()
    if not os.path.isdir(WORDNET_DIR):
        sys.exit(f"{WORDNET_DIR} not found: install Debian's wordnet-base")

    rng = random.Random(args.seed)
    chosen = pairs(synsets(), args.examples + args.chat_examples, rng)
    os.makedirs(args.out_dir, exist_ok=True)

    standard = os.path.join(args.out_dir, "wordnet_define.jsonl")
    with open(standard, "w", encoding="utf-8") as f:
        for pos, word, good, bad in chosen[: args.examples]:
            prompt = rng.choice(PROMPTS).format(w=word, pos=pos)
            f.write(json.dumps({"prompt": prompt, "chosen": good, "rejected": bad}, ensure_ascii=False) + "\n")

    chat = os.path.join(args.out_dir, "wordnet_chat.jsonl")
    rest = chosen[args.examples:]
    with open(chat, "w", encoding="utf-8") as f:
        for i, (pos, word, good, bad) in enumerate(rest):
            prompt = []
            if rng.random() < 0.3:
                prompt.append({"role": "system", "content": rng.choice(SYSTEMS)})
            if rng.random() < 0.3:  # an earlier turn: the previous word and its definition
                p_pos, p_word, p_good, _ = rest[i - 1]
                prompt.append({"role": "user", "content": rng.choice(PROMPTS).format(w=p_word, pos=p_pos)})
                prompt.append({"role": "assistant", "content": p_good})
            prompt.append({"role": "user", "content": rng.choice(PROMPTS).format(w=word, pos=pos)})
            line = {"prompt": prompt,
                    "chosen": [{"role": "assistant", "content": good}],
                    "rejected": [{"role": "assistant", "content": bad}]}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    for path in (standard, chat):
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
