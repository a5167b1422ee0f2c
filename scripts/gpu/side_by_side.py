#!/usr/bin/env python3
"""One table from duet bench's and bench/peer_pytorch.py's JSON lines: samples/s,
TFLOP/s and memory per (data, layout), duet beside the peer, and duet's speed-up.

  scripts/gpu/side_by_side.py DUET.jsonl PEER.jsonl
"""
import json
import os
import sys


def rows(path):
    try:
        return [json.loads(line) for line in open(path) if line.strip()]
    except FileNotFoundError:
        return []


def main() -> int:
    duet, peer = rows(sys.argv[1]), rows(sys.argv[2])
    layout_of = {"paired+packed": "paired-packed", "shared+packed": "shared-packed",
                 "paired": "paired-padded"}
    peer_by = {(p.get("profile"), p.get("layout")): p for p in peer}
    print(f"{'data':16} {'layout':14} {'duet samples/s':>15} {'peer samples/s':>15} {'speed-up':>9} "
          f"{'duet TF/s':>9} {'duet GiB':>8} {'peer GiB':>8}")
    for d in duet:
        profile = os.path.basename(d["data"]).removesuffix(".jsonl")
        p = peer_by.get((profile, layout_of.get(d["layout"], d["layout"])), {})
        ps = p.get("samples_per_s")
        ds = d["samples_per_second"]
        speedup = f"{ds / ps:.2f}x" if ps else "-"
        peer_cell = f"{ps:.2f}" if ps else p.get("status", "-")
        print(f"{profile:16} {d['layout']:14} {ds:15.2f} {peer_cell:>15} {speedup:>9} {d['tflops']:9.1f} "
              f"{d['memory_gib']:8.1f} {p.get('peak_gib', float('nan')):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
