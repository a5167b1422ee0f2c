#!/usr/bin/env python3
"""Compares `duet tokenize` with Hugging Face `tokenizers` on a corpus.

  scripts/compare_hf_tokenizers.py --duet BUILD/duet \\
      --tokenizers ASSETS/tokenizers/llama3 ASSETS/tokenizers/qwen3 ... \\
      --corpus tests/data/tokenizer_corpus.jsonl [--npm-cases ASSETS/npm_cases] \\
      [--out report.json]

For each tokenizer directory DIR (holding tokenizer.json):
  encode, add_special_tokens False and True:
      duet tokenize --tokenizer DIR --jsonl [--add-special]
          stdin: the corpus lines (one JSON string per line)
          stdout: one JSON array of ids per line
      vs Tokenizer.from_file(DIR/tokenizer.json).encode(text, add_special_tokens=...).ids
  decode, on the HF ids of every corpus line (from both add_special variants), with
  skip_special_tokens False and True:
      duet tokenize --tokenizer DIR --decode [--skip-special-tokens]
          stdin: one JSON array of ids per line; stdout: one JSON string per line
      vs Tokenizer.decode(ids, skip_special_tokens=...)
  npm cases (with --npm-cases DIR, for files whose "tokenizer" is DIR's basename): the
      JS packages' expected ids, checked against both HF and duet; cases marked
      hf_compatible=false are skipped (see docs/tokenizer-testing.md).

Prints a table per tokenizer and mode (lines, mismatches, the first few mismatches)
and exits 1 if anything differs or duet fails. Needs only the standard library and
`tokenizers` (run it where that is installed).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SHOW = 5          # mismatches printed per mode
KEEP = 50         # mismatches kept per mode in the JSON report
WINDOW = 4        # ids / characters shown either side of the first difference


def read_jsonl_strings(path: str) -> list[str]:
    # split on "\n" only: str.splitlines() would also split on U+2028, U+0085, ...
    with open(path, encoding="utf-8", newline="") as f:
        data = f.read()
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts = []
    for i, line in enumerate(lines):
        s = json.loads(line)
        if not isinstance(s, str):
            sys.exit(f"{path}:{i + 1}: not a JSON string")
        texts.append(s)
    return texts


class DuetError(Exception):
    pass


def run_duet(duet: str, args: list[str], lines: list[str], timeout: float) -> tuple[list[str], float]:
    """Runs duet with one JSON value per input line; returns its output lines."""
    cmd = [duet, "tokenize", *args]
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DuetError(f"{' '.join(cmd)}: timed out after {timeout:.0f}s")
    except OSError as e:
        raise DuetError(f"{' '.join(cmd)}: {e}")
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()[-2000:]
        raise DuetError(f"{' '.join(cmd)}: exit code {p.returncode}\n{err}")
    try:
        out = p.stdout.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DuetError(f"{' '.join(cmd)}: output is not UTF-8 ({e})")
    outl = out.split("\n")
    if outl and outl[-1] == "":
        outl.pop()
    if len(outl) != len(lines):
        raise DuetError(f"{' '.join(cmd)}: {len(lines)} lines in, {len(outl)} lines out")
    return outl, dt


def parse_outputs(outl: list[str], kind: type) -> list:
    vals = []
    for i, line in enumerate(outl):
        try:
            v = json.loads(line)
        except json.JSONDecodeError as e:
            raise DuetError(f"output line {i + 1} is not JSON ({e}): {line[:200]!r}")
        if kind is list and not (isinstance(v, list) and all(isinstance(x, int) for x in v)):
            raise DuetError(f"output line {i + 1} is not a list of ids: {line[:200]!r}")
        if kind is str and not isinstance(v, str):
            raise DuetError(f"output line {i + 1} is not a string: {line[:200]!r}")
        vals.append(v)
    return vals


def first_diff(a, b) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def short(s: str, total: int, n: int = 60) -> str:
    r = repr(s)
    if len(r) <= n and len(s) == total:
        return r
    return r[: n - 5] + "...'" + f" ({total} chars)"


def mismatch_record(idx: int, text: str, hf, duet) -> dict:
    k = first_diff(hf, duet)
    lo, hi = max(0, k - WINDOW), k + WINDOW + 1
    return {
        "line": idx + 1,
        "text": text if len(text) <= 200 else text[:200],
        "text_len": len(text),
        "first_diff": k,
        "hf_len": len(hf),
        "duet_len": len(duet),
        "window_start": lo,
        "hf": hf[lo:hi],
        "duet": duet[lo:hi],
    }


def show(rec: dict) -> str:
    return (f"    line {rec['line']}: {short(rec['text'], rec['text_len'])} @{rec['first_diff']} "
            f"(len hf {rec['hf_len']} duet {rec['duet_len']})\n"
            f"      hf  [{rec['window_start']}:] {rec['hf']!r}\n"
            f"      duet[{rec['window_start']}:] {rec['duet']!r}")


class Report:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, tokenizer: str, mode: str, lines: int, records: list[dict], error: str | None = None,
            duet_s: float | None = None, hf_s: float | None = None):
        row = {"tokenizer": tokenizer, "mode": mode, "lines": lines,
               "mismatches": len(records) if error is None else lines,
               "error": error, "duet_seconds": duet_s, "hf_seconds": hf_s,
               "mismatched_lines": [r["line"] for r in records], "examples": records[:KEEP]}
        self.rows.append(row)
        status = "ERROR" if error else ("ok" if not records else "MISMATCH")
        timing = ""
        if duet_s is not None and hf_s is not None:
            timing = f"  duet {duet_s:.2f}s hf {hf_s:.2f}s"
        print(f"  {mode:<48} {lines:>6} {row['mismatches']:>10}  {status}{timing}")
        if error:
            print("    " + error.replace("\n", "\n    "))
        for r in records[:SHOW]:
            print(show(r))
        if len(records) > SHOW:
            print(f"    ... {len(records) - SHOW} more")

    @property
    def failed(self) -> bool:
        return any(r["error"] or r["mismatches"] for r in self.rows)


def compare_tokenizer(args, tdir: str, texts: list[str], npm_files: list[dict], rep: Report):
    from tokenizers import Tokenizer  # imported here so --help works without it

    name = os.path.basename(os.path.normpath(tdir))
    tok = Tokenizer.from_file(os.path.join(tdir, "tokenizer.json"))
    print(f"\n== {name} ({tdir})")
    print(f"  {'mode':<48} {'lines':>6} {'mismatches':>10}")
    corpus_lines = [json.dumps(t, ensure_ascii=False) for t in texts]
    hf_ids: dict[bool, list[list[int]]] = {}

    # ---- encode
    for add_special in (False, True):
        mode = f"encode add_special_tokens={add_special}"
        t0 = time.perf_counter()
        hf = [tok.encode(t, add_special_tokens=add_special).ids for t in texts]
        hf_s = time.perf_counter() - t0
        hf_ids[add_special] = hf
        flags = ["--tokenizer", tdir, "--jsonl"] + (["--add-special"] if add_special else [])
        try:
            outl, duet_s = run_duet(args.duet, flags, corpus_lines, args.timeout)
            duet = parse_outputs(outl, list)
        except DuetError as e:
            rep.add(name, mode, len(texts), [], error=str(e))
            continue
        recs = [mismatch_record(i, texts[i], h, d) for i, (h, d) in enumerate(zip(hf, duet)) if h != d]
        rep.add(name, mode, len(texts), recs, duet_s=duet_s, hf_s=hf_s)

    # ---- decode (of the HF ids)
    for add_special in (False, True):
        ids_list = hf_ids[add_special]
        id_lines = [json.dumps(ids) for ids in ids_list]
        for skip in (False, True):
            mode = f"decode ids(add_special={add_special}) skip_special={skip}"
            t0 = time.perf_counter()
            hf = [tok.decode(ids, skip_special_tokens=skip) for ids in ids_list]
            hf_s = time.perf_counter() - t0
            flags = ["--tokenizer", tdir, "--decode"] + (["--skip-special-tokens"] if skip else [])
            try:
                outl, duet_s = run_duet(args.duet, flags, id_lines, args.timeout)
                duet = parse_outputs(outl, str)
            except DuetError as e:
                rep.add(name, mode, len(ids_list), [], error=str(e))
                continue
            recs = [mismatch_record(i, texts[i], h, d) for i, (h, d) in enumerate(zip(hf, duet)) if h != d]
            rep.add(name, mode, len(ids_list), recs, duet_s=duet_s, hf_s=hf_s)

    # ---- npm cases
    for f in npm_files:
        if f.get("tokenizer") != name:
            continue
        cases = [c for c in f["cases"] if c.get("hf_compatible", True)]
        skipped = len(f["cases"]) - len(cases)
        label = f"npm {f['package']} ({skipped} skipped)"
        bos, eos = f["bos_id"], f["eos_id"]

        def wrap(c, body):
            return ([bos] if c["add_bos"] else []) + list(body) + ([eos] if c["add_eos"] else [])

        texts_n = [c["text"] for c in cases]
        hf = [wrap(c, tok.encode(c["text"], add_special_tokens=False).ids) for c in cases]
        recs = [mismatch_record(i, c["text"], c["ids"], h) for i, (c, h) in enumerate(zip(cases, hf)) if c["ids"] != h]
        for r in recs:
            r["note"] = "expected (npm) shown as hf, HF tokenizers shown as duet"
        rep.add(name, f"{label}: HF encode", len(cases), recs)
        dec = [(i, c) for i, c in enumerate(cases) if c["decode"]]
        skip = f["decode_skip_special_tokens"]
        recs = []
        for i, c in dec:
            got = tok.decode(c["ids"], skip_special_tokens=skip)
            if got != c["text"]:
                recs.append(mismatch_record(i, c["text"], c["text"], got))
        rep.add(name, f"{label}: HF decode", len(dec), recs)
        try:
            outl, _ = run_duet(args.duet, ["--tokenizer", tdir, "--jsonl"],
                               [json.dumps(t, ensure_ascii=False) for t in texts_n], args.timeout)
            duet = [wrap(c, ids) for c, ids in zip(cases, parse_outputs(outl, list))]
            recs = [mismatch_record(i, c["text"], c["ids"], d) for i, (c, d) in enumerate(zip(cases, duet)) if c["ids"] != d]
            rep.add(name, f"{label}: duet encode", len(cases), recs)
        except DuetError as e:
            rep.add(name, f"{label}: duet encode", len(cases), [], error=str(e))
        # decode-only cases: each (ids, text) under each skip_special_tokens it lists
        dos = [(d, s) for d in f.get("decode_only", []) if d.get("hf_compatible", True)
               for s in d.get("hf_skip_special_tokens", [])]
        if dos:
            recs = []
            for i, (d, s) in enumerate(dos):
                got = tok.decode(d["ids"], skip_special_tokens=s)
                if got != d["text"]:
                    recs.append(mismatch_record(i, d["text"], d["text"], got))
            rep.add(name, f"npm {f['package']}: HF decode_only", len(dos), recs)
            recs, err = [], None
            for s in (False, True):
                sel = [(i, d) for i, (d, s2) in enumerate(dos) if s2 == s]
                if not sel:
                    continue
                try:
                    outl, _ = run_duet(args.duet, ["--tokenizer", tdir, "--decode"]
                                       + (["--skip-special-tokens"] if s else []),
                                       [json.dumps(d["ids"]) for _, d in sel], args.timeout)
                    got = parse_outputs(outl, str)
                    recs += [mismatch_record(i, d["text"], d["text"], g)
                             for (i, d), g in zip(sel, got) if g != d["text"]]
                except DuetError as e:
                    err = str(e)
            rep.add(name, f"npm {f['package']}: duet decode_only", len(dos), recs, error=err)
        if dec:
            try:
                outl, _ = run_duet(args.duet, ["--tokenizer", tdir, "--decode"]
                                   + (["--skip-special-tokens"] if skip else []),
                                   [json.dumps(c["ids"]) for _, c in dec], args.timeout)
                got = parse_outputs(outl, str)
                recs = [mismatch_record(i, c["text"], c["text"], g) for (i, c), g in zip(dec, got) if g != c["text"]]
                rep.add(name, f"{label}: duet decode", len(dec), recs)
            except DuetError as e:
                rep.add(name, f"{label}: duet decode", len(dec), [], error=str(e))


def main() -> int:
    ap = argparse.ArgumentParser(description="Compare `duet tokenize` with HF tokenizers.")
    ap.add_argument("--duet", required=True, help="path to the duet binary")
    ap.add_argument("--tokenizers", required=True, nargs="+", metavar="DIR",
                    help="tokenizer directories (each with tokenizer.json)")
    ap.add_argument("--corpus", required=True, help="JSONL file, one JSON string per line")
    ap.add_argument("--npm-cases", metavar="DIR", help="also check DIR/*.json npm cases (fetch_test_assets.sh)")
    ap.add_argument("--out", help="write a JSON report here")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per duet invocation")
    args = ap.parse_args()

    try:
        import tokenizers
    except ImportError:
        sys.exit("compare_hf_tokenizers: the `tokenizers` package is not installed")

    texts = read_jsonl_strings(args.corpus)
    npm_files = []
    if args.npm_cases:
        for fn in sorted(os.listdir(args.npm_cases)):
            if fn.endswith(".json"):
                with open(os.path.join(args.npm_cases, fn), encoding="utf-8") as f:
                    npm_files.append(json.load(f))
    print(f"corpus {args.corpus}: {len(texts)} lines; tokenizers {tokenizers.__version__}; duet {args.duet}")
    rep = Report()
    for tdir in args.tokenizers:
        compare_tokenizer(args, tdir, texts, npm_files, rep)

    total = sum(r["mismatches"] for r in rep.rows)
    errors = sum(1 for r in rep.rows if r["error"])
    print(f"\n{len(rep.rows)} checks, {total} mismatched lines, {errors} duet errors")
    if args.out:
        report = {
            "duet": args.duet,
            "corpus": args.corpus,
            "corpus_lines": len(texts),
            "tokenizers_version": tokenizers.__version__,
            "python": sys.version.split()[0],
            "ok": not rep.failed,
            "results": rep.rows,
        }
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(f"report written to {args.out}")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
