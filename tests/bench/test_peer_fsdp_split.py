#!/usr/bin/env python3
"""bench/peer_fsdp.py's host side (no torch, no GPU): how a step's examples reach the
ranks. Every example on exactly one rank, loads balanced by token cost, every rank the
same number of micro-batches (FSDP's collectives), fillers weighted zero."""
import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import peer_fsdp  # noqa: E402
import peer_pytorch as pp  # noqa: E402


def main() -> int:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    synth = pp.load_synth()
    failures = []
    for trial in range(20):
        ranks = rng.choice([1, 2, 3, 4, 8])
        n = rng.randint(1, 40)
        exs = pp.make_examples(synth, rng.choice(list(synth.PROFILES)), n, rng.randrange(1000), 32000)
        ids = list(range(n))
        layout = rng.choice(["shared-packed", "paired-packed"])
        shared = layout == "shared-packed"
        cost = lambda e: sum(len(s) for s in exs[e]) + (0 if shared else len(exs[e][0]))  # noqa: E731
        shares = peer_fsdp.deal_by_cost(exs, ids, ranks, shared)
        where = f"seed {seed} trial {trial} ({ranks} ranks, {n} examples, {layout})"
        if sorted(e for s in shares for e in s) != ids:
            failures.append(f"{where}: examples lost or repeated")
        loads = [sum(cost(e) for e in s) for s in shares]
        if max(loads) - min(loads) > max(cost(e) for e in ids):
            failures.append(f"{where}: loads {loads} differ by more than the longest example")
        args = argparse.Namespace(pack_tokens=8192, pad_multiple=128)
        counts, pairs = set(), []
        for r in range(ranks):
            mbs, weights, fillers = peer_fsdp.rank_microbatches(layout, exs, ids, r, ranks, args, None)
            counts.add(len(mbs))
            if len(weights) != len(mbs) or weights.count(0.0) != fillers:
                failures.append(f"{where}: rank {r}: {fillers} fillers but weights {weights}")
            pairs += [e for mb, w in zip(mbs, weights) if w for e in mb["pairs"]]
        if len(counts) != 1:
            failures.append(f"{where}: ranks run different numbers of micro-batches {sorted(counts)}")
        if sorted(pairs) != ids:
            failures.append(f"{where}: the weighted micro-batches do not hold every example once")
    print(f"peer_fsdp split (seed {seed}): {len(failures)} failure(s)")
    for f in failures[:10]:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
