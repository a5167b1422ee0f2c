"""Real English text from Debian packages, for the tokenizer corpus, the tokenizer
benchmark and the demo dataset: fortunes (package `fortunes`) and WordNet glosses
(package `wordnet-base`). Each caller filters and orders the raw entries itself."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

FORTUNES_DIR = "/usr/share/games/fortunes"
WORDNET_DIR = "/usr/share/wordnet"
FORTUNE_FILES = [
    "art", "computers", "cookie", "debian", "definitions", "education", "food",
    "fortunes", "goedel", "humorists", "kids", "linux", "linuxcookie", "literature",
    "magic", "medicine", "miscellaneous", "paradoxum", "people", "perl", "pets",
    "platitudes", "riddles", "science", "songs-poems", "sports", "startrek", "tao",
    "wisdom", "work", "zippy",
]
WORDNET_POS_FILES = {"noun": "data.noun", "verb": "data.verb", "adjective": "data.adj", "adverb": "data.adv"}


def fortune_entries(name: str) -> list[str]:
    """The entries of one fortune file, split at the '%' lines (each may keep edge newlines)."""
    with open(os.path.join(FORTUNES_DIR, name), encoding="utf-8") as f:
        return [e.removesuffix("\n%") for e in re.split(r"\n%\n", f.read())]


def wordnet_entries(pos: str) -> Iterator[tuple[str, str]]:
    """(synset head, gloss) of every data line of one part of speech; the licence header is skipped."""
    with open(os.path.join(WORDNET_DIR, WORDNET_POS_FILES[pos]), encoding="utf-8") as f:
        for line in f:
            if line.startswith("  ") or " | " not in line:
                continue
            head, gloss = line.rstrip("\n").split(" | ", 1)
            yield head, gloss
