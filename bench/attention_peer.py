#!/usr/bin/env python3
"""PyTorch peer of bench_attention_cuda on the same rows (GPU machine).

Reads the rows dumped by `bench_attention_cuda --dump DIR` (DIR/<row>.i32:
visible_until as raw int32; DIR/duet.tsv: duet's timings) and times, in bf16
with the same shapes (32 query / 8 kv heads, head dims 128 and 64, 8192 tokens):
  - FlexAttention (torch.compile'd) with a BlockMask built from visible_until
    by mask_mod: key j visible to query i iff j <= i < visible_until[j];
  - SDPA causal (is_causal=True, kv heads repeated) on the causal row.
TFLOP/s count visible pairs only, as the C++ benchmark: 4·D FLOP per pair and
query head forward, 2.5 times that backward. CUDA events, warm-up, median.
Prints one table with duet's numbers next to the peer's.

    python3 bench/attention_peer.py --dump DIR [--repeats N]
"""
import argparse
import csv
import os
import statistics

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

T, HQ, HKV = 8192, 32, 8


def median_ms(fn, repeats):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def time_fwd_bwd(attend, q, k, v, repeats):
    """Forward time, and backward time alone (the graph kept for every repeat)."""
    fwd = median_ms(lambda: attend(q, k, v), repeats)
    out = attend(q, k, v)
    grad = torch.randn_like(out)
    bwd = median_ms(lambda: torch.autograd.grad(out, (q, k, v), grad, retain_graph=True), repeats)
    return fwd, bwd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    with open(os.path.join(args.dump, "duet.tsv")) as f:
        duet = list(csv.DictReader(f, delimiter="\t"))
    rows = list(dict.fromkeys(r["row"] for r in duet))
    dev = "cuda"
    vu = torch.empty(T, dtype=torch.int32, device=dev)  # one tensor, refilled per row

    def forest(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & (q_idx < vu[kv_idx])

    flex = torch.compile(flex_attention, dynamic=False)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    results = []
    for dim in (128, 64):
        g = torch.Generator(device=dev).manual_seed(dim)
        q = torch.randn(1, HQ, T, dim, device=dev, dtype=torch.bfloat16, generator=g, requires_grad=True)
        k = torch.randn(1, HKV, T, dim, device=dev, dtype=torch.bfloat16, generator=g, requires_grad=True)
        v = torch.randn(1, HKV, T, dim, device=dev, dtype=torch.bfloat16, generator=g, requires_grad=True)
        for row in rows:
            host = np.fromfile(os.path.join(args.dump, row + ".i32"), dtype=np.int32)
            vu.copy_(torch.from_numpy(host))
            pairs = float((host - np.arange(T)).sum())
            flop = 4.0 * dim * HQ * pairs
            mask = create_block_mask(forest, None, None, T, T, device=dev)
            fwd, bwd = time_fwd_bwd(lambda a, b, c: flex(a, b, c, block_mask=mask, enable_gqa=True),
                                    q, k, v, args.repeats)
            results.append((row, dim, "flex", flop / fwd / 1e9, 2.5 * flop / bwd / 1e9))
            if row == "causal":
                rep = HQ // HKV
                sdpa = lambda a, b, c: F.scaled_dot_product_attention(
                    a, b.repeat_interleave(rep, 1), c.repeat_interleave(rep, 1), is_causal=True)
                fwd, bwd = time_fwd_bwd(sdpa, q, k, v, args.repeats)
                results.append((row, dim, "sdpa", flop / fwd / 1e9, 2.5 * flop / bwd / 1e9))
    ours = {(r["row"], int(r["head_dim"])): r for r in duet}
    print(f"{'row':15} {'D':>4} {'peer':5} {'peer fwd':>9} {'peer bwd':>9} {'duet fwd':>9} {'duet bwd':>9}  (TFLOP/s)")
    for row, dim, peer, pf, pb in results:
        d = ours[(row, dim)]
        flop = 4.0 * dim * int(d["q_heads"]) * float(d["pairs"])
        df, db = flop / float(d["fwd_ms"]) / 1e9, 2.5 * flop / float(d["bwd_ms"]) / 1e9
        print(f"{row:15} {dim:4d} {peer:5} {pf:9.1f} {pb:9.1f} {df:9.1f} {db:9.1f}")


if __name__ == "__main__":
    main()
