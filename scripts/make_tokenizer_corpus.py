#!/usr/bin/env python3
"""Builds tests/data/tokenizer_corpus.jsonl: texts for comparing duet's tokenizer with
HF `tokenizers` (scripts/compare_hf_tokenizers.py) and for duet's own tests.

One JSON string per line. Deterministic: the same installed data gives the same
bytes (no randomness; selections are made by sorting on sha256 of the text).

Contents (see docs/tokenizer-testing.md):
  * real text: Debian `fortunes` (/usr/share/games/fortunes; multi-line entries keep
    their newlines and tabs) and WordNet glosses and usage examples
    (/usr/share/wordnet/data.{noun,verb,adj,adv}, Debian `wordnet-base`);
  * hostile cases written here: emoji/ZWJ, CJK, RTL and Indic scripts, combining
    marks, NFC/NFD pairs, whitespace runs, CR/LF variants, digits, contractions,
    special-token strings inside text, empty/space-only texts, 10k-character words,
    code, URLs, math, invisible and control characters.

Usage:
  scripts/make_tokenizer_corpus.py [--out tests/data/tokenizer_corpus.jsonl] [--check]
--check regenerates in memory and exits 1 if the file differs.

Output only needs python3 (stdlib) and the two Debian data packages; the committed
file is what tests use, so this only runs when the corpus is changed on purpose.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from debian_text import FORTUNE_FILES, fortune_entries, wordnet_entries  # noqa: E402

N_FORTUNES = 150           # from FORTUNE_FILES
N_ASCII_ART = 3            # from ascii-art
N_TRANSLATE_ME = 4         # from translate-me
N_GLOSSES = 50             # WordNet definitions
N_EXAMPLES = 40            # WordNet usage examples
N_FULL_GLOSSES = 10        # whole gloss field: definition; "example"; "example"


def key(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def pick(items, n):
    """n items chosen deterministically (by sha256), returned in that order."""
    uniq = sorted(set(items), key=key)
    if len(uniq) < n:
        sys.exit(f"make_tokenizer_corpus: only {len(uniq)} candidates, need {n}")
    return uniq[:n]


def read_fortunes(name: str) -> list[str]:
    entries = [e.removesuffix("\n") for e in fortune_entries(name)]
    return [e for e in entries if e.strip()]


def fortunes() -> list[str]:
    pool = []
    for name in FORTUNE_FILES:
        pool += [e for e in read_fortunes(name) if 40 <= len(e) <= 1200]
    multi = [e for e in pool if "\n" in e]
    single = [e for e in pool if "\n" not in e]
    # two thirds multi-line, one third single-line
    n_multi = N_FORTUNES * 2 // 3
    out = pick(multi, n_multi) + pick(single, N_FORTUNES - n_multi)
    out += pick([e for e in read_fortunes("ascii-art") if len(e) <= 2000], N_ASCII_ART)
    out += pick(read_fortunes("translate-me"), N_TRANSLATE_ME)
    return out


def wordnet() -> list[str]:
    glosses, examples, full = [], [], []
    for pos in ("noun", "verb", "adjective", "adverb"):
        for _, gloss in wordnet_entries(pos):
            gloss = gloss.rstrip()
            full.append(gloss)
            definition = gloss.split('; "', 1)[0].strip()
            if 20 <= len(definition):
                glosses.append(definition)
            examples += [x for x in re.findall(r'"([^"]+)"', gloss) if len(x) >= 12]
    return (pick(glosses, N_GLOSSES) + pick(examples, N_EXAMPLES)
            + pick([g for g in full if '"' in g and len(g) < 600], N_FULL_GLOSSES))


def hostile() -> list[str]:
    t: list[str] = []
    # --- emoji, ZWJ sequences, flags, skin tones, variation selectors
    t += [
        "👨\u200d👩\u200d👧\u200d👦",                       # family (ZWJ)
        "Family: 👨\u200d👩\u200d👧\u200d👦 and 👩\u200d👩\u200d👦.",
        "👩🏽\u200d💻 writes code; 🧑🏿\u200d🚀 flies.",       # skin tone + ZWJ
        "👋🏻👋🏼👋🏽👋🏾👋🏿",                                   # skin tones
        "🇺🇸🇯🇵🇩🇪🇫🇷🇧🇷",                                   # flags (regional indicators)
        "🏳️\u200d🌈 🏴\u200d☠️",                            # VS16 + ZWJ
        "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England (tag chars)
        "1️⃣ #️⃣ ❤️ ❤ ☺️",                                    # keycaps, VS16
        "I love 🦙s!🦙🦙 🦙",
        "😀😃😄😁😆😅🤣😂🙂🙃",
        "emoji at end 🎉",
        "🎉 emoji at start",
    ]
    # --- CJK
    t += [
        "我爱自然语言处理。今天天气很好！",
        "東京は日本の首都です。ひらがな、カタカナ、漢字を使います。",
        "カタカナだけのテキスト：コンピューター、プログラミング",
        "안녕하세요, 세계! 한국어 텍스트입니다.",
        "Mixed 中文 and English 混合 text, 日本語も。",
        "ＡＢＣ１２３ｘｙｚ　全角スペース",                  # full-width + U+3000
        "「引用」『二重』【括弧】〈山括弧〉",
        "𠀀𠀁𠀂 𪚥",                                        # CJK ext B (4-byte UTF-8)
    ]
    # --- RTL and Indic/SE Asian scripts
    t += [
        "مرحبا بالعالم! هذا نص عربي.",
        "العدد ١٢٣٤٥ والرقم 678",
        "שלום עולם, זה טקסט בעברית.",
        "Hebrew in English: שלום and back.",
        "नमस्ते दुनिया! यह हिन्दी पाठ है।",
        "क्षत्रिय ज्ञान श्री",                                 # conjuncts (virama)
        "สวัสดีชาวโลก นี่คือข้อความภาษาไทย",                  # Thai, no word spaces
        "Ελληνικά: Γειά σου Κόσμε! Русский: Привет, мир!",
        "\u200fRTL mark and \u200eLTR mark",
    ]
    # --- combining marks (NFD) and NFC/NFD pairs
    t += [
        "e\u0301",
        "Cafe\u0301 au lait, nai\u0308ve re\u0301sume\u0301",
        "n\u0303 A\u030a o\u0308 u\u0308 c\u0327",
        "a\u0301\u0302\u0303\u0304\u0305\u0306",               # stacked marks
        "Z\u0351\u036b\u0343a\u0352\u0369l\u0350g\u0346o\u0350",  # zalgo-ish
        "\u0301 leading combining mark",
    ]
    for s in ["café", "Ångström", "naïve résumé", "Œuvre déjà vu", "한국어", "Ελληνικά ά", "ﬁ ligature ①"]:
        nfc, nfd = unicodedata.normalize("NFC", s), unicodedata.normalize("NFD", s)
        t += [nfc, nfd] if nfc != nfd else [nfc]
    t.append(unicodedata.normalize("NFKC", "ﬁ ligature ①"))
    # --- whitespace: runs of spaces 1..20, tabs, CR/LF, newlines, leading/trailing
    t += [f"a{' ' * n}b" for n in range(1, 21)]
    t += [" " * n for n in (2, 3, 4, 7, 8, 15, 16, 20)]
    t += [" " * n + "word" for n in (1, 2, 5)] + ["word" + " " * n for n in (1, 2, 5)]
    t += [
        "\t", "a\tb", "\t\tindented with tabs", "col1\tcol2\tcol3\n1\t2\t3",
        " \t mixed \t whitespace \t ",
        "line1\r\nline2\r\n", "\r\n", "\r\n\r\n", "a\rb", "\r", "lone CR\rin the middle",
        "\n", "\n\n\n", "a\n\n\nb", " \n ", "\n \n", "a \n b", "a  \n\n  b", "  \n", "\t \n",
        "trailing newline\n", "\nleading newline",
        " leading space", "trailing space ", "  both sides  ", " \thello\t ",
        "\u000b vertical tab \u000c form feed \u0085 next line",
    ]
    # --- numbers
    digits = "1234567890"
    t += [(digits * 4)[:n] for n in range(1, 41)]
    t += [
        "1,234,567.89", "3.14159265358979323846", "1.000.000,00", "0.0001", "-42", "+1 (555) 123-4567",
        "2024-01-15T12:30:45Z", "v1.2.3-rc.1", "1e-10 and 6.022e23", "0x1F 0b1010 0o777",
        "$1,000,000 €2.50 £3 ¥400", "100%", "1/2 3/4", "٣٤٥ ໑໒໓ ４５６",       # other-script digits
    ]
    # --- contractions, any case
    t += [
        "DON'T", "I'M", "They'Ll", "WE'VE", "YOU'RE", "SHE'D", "IT'S", "It'S", "it's",
        "I'm sure they'll say we'd've done it.", "DON'T STOP, I'M HERE, YOU'LL SEE",
        "don’t (curly apostrophe)", "'twas 'tis 's 't", "rock 'n' roll", "O'Neill's",
    ]
    # --- special-token strings inside text (each family's)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
                "<s>", "</s>", "<unk>"]
    for sp in specials:
        t += [sp, f" {sp} ", f"a{sp}b", f"Hello {sp}world", f"{sp}{sp}", f"{sp}\n"]
    t += [
        "".join(specials),
        " ".join(specials),
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n",
        "<s>[INST] What is 2+2? [/INST] 4</s>",
        "<think>\nreasoning\n</think>\n\nanswer",
        "<|reserved_special_token_0|> <|reserved_special_token_250|> <|python_tag|>",
        "near misses: <|im_start <|eot_id |> < s> <S> </ s> <|endoftext| <||>",
    ]
    # --- empty and space
    t += ["", " "]
    # --- 10k-character words
    t += [
        "a" * 10000,
        ("abcdefghij" * 1000),
        digits * 1000,
        ("!?.,;:-" * 1429)[:10000],
        "🦙" * 10000,
        "x" * 5000 + " " + "y" * 5000,
    ]
    # --- code
    t += [
        'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n'
        "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\n"
        'if __name__ == "__main__":\n    print(fib(10))\n',
        "#include <vector>\n\ntemplate <typename T>\nT sum(const std::vector<T>& v) {\n"
        "\tT s{};\n\tfor (const auto& x : v) {\n\t\ts += x;  // accumulate\n\t}\n\treturn s;\n}\n",
        '{"key": "value", "n": [1, 2.5, -3e4], "nested": {"a": null, "b": true}}',
        "for f in *.txt; do\n  echo \"$f\" | tr '[:lower:]' '[:upper:]' >> out.log 2>&1\ndone",
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
        '<div class="x" id=\'y\'>&lt;tag&gt; &amp; &#x1F999;</div>',
        "x = y ** 2 // 3 != z && a || !b; i++; j--; p->q; a::b; c <=> d;",
        "    four spaces\n        eight spaces\n\t\ttwo tabs\n  \t mixed",
    ]
    # --- URLs, paths, emails
    t += [
        "https://example.com/path/to/page?query=1&x=y%20z#fragment",
        "Visit http://www.example.org/index.html or ftp://files.example.net/pub/.",
        "mailto:someone@example.com, first.last+tag@sub.example.co.uk",
        "C:\\Users\\Admin\\Documents\\file.txt and /usr/local/bin/python3",
        "git@github.com:owner/repo.git",
    ]
    # --- math
    t += [
        "∀x∈ℝ: x² ≥ 0", "E = mc²", "∫₀^∞ e^{-x²} dx = √π/2", "\\frac{a}{b} + \\sum_{i=1}^{n} i^2",
        "α + β = γ; Δx → 0; ∂f/∂x", "2 × 3 ÷ 4 ≠ 5 ± 1 ≈ 0.5 ≤ ∞",
    ]
    # --- invisible and control characters
    t += [
        "zero\u200bwidth\u200bspace", "\ufeffBOM at start", "a\u200cb\u200dc\u2060d",
        "100\u00a0km", "\u00a0", "nbsp\u00a0between\u00a0words", "narrow\u202fnbsp",
        "line\u2028separator", "paragraph\u2029separator",
        "\u0001", "a\u0001b", "\u007f", "del\u007fchar", "nul\u0000byte", "\u001b[31mred\u001b[0m",
        "\ufffd replacement char", "private use \ue000\uf8ff", "\U0010fffd last plane",
        "soft\u00adhyphen",
    ]
    return t


# Characters written as \uXXXX escapes (besides what json.dumps escapes) so that
# the file has no invisible or line-breaking characters that editors, diffs or
# str.splitlines() would mangle.
_ESCAPE = re.compile("[\u007f-\u009f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\ue000-\uf8ff]")


def dump(s: str) -> str:
    s.encode("utf-8")  # raises on lone surrogates
    out = json.dumps(s, ensure_ascii=False)
    return _ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)


def build() -> list[str]:
    real = fortunes() + wordnet()
    texts = real + hostile()
    seen, uniq = set(), []
    for s in texts:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    return uniq


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "tokenizer_corpus.jsonl"))
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from a fresh build")
    a = ap.parse_args()
    texts = build()
    data = "".join(dump(s) + "\n" for s in texts)
    # self-check: every line parses back to the same text
    back = [json.loads(line) for line in data.split("\n")[:-1]]
    assert back == texts, "round trip failed"
    if a.check:
        with open(a.out, encoding="utf-8", newline="") as f:
            same = f.read() == data
        print(f"make_tokenizer_corpus: {a.out} {'is up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8", newline="") as f:
        f.write(data)
    n_real = len(fortunes()) + len(wordnet())
    print(f"make_tokenizer_corpus: wrote {a.out}: {len(texts)} texts ({n_real} real, "
          f"{len(texts) - n_real} hostile), {len(data.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
