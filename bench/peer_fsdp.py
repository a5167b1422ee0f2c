#!/usr/bin/env python3
"""The PyTorch peer on several GPUs: bench/peer_pytorch.py's DPO step under FSDP2.

What the scaling issue compares duet's ZeRO-3 with: PyTorch FSDP2 (`fully_shard`, full
sharding, the equivalent of ZeRO-3) on every decoder layer and the root, for the policy
and the frozen reference alike, the same FlexAttention masks, the same examples per step.
Started by torchrun, one process per GPU:

    torchrun --standalone --nproc_per_node 8 bench/peer_fsdp.py --arch llama-3.1-8b \\
        --profile hh-rlhf,capybara --layout shared-packed,paired-packed --json fsdp.jsonl
    torchrun --standalone --nproc_per_node 2 bench/peer_fsdp.py --self-check

The step (as duet's data parallelism does it): the step's E examples are dealt to the
ranks by token cost (longest first, each to the rank with the fewest tokens so far), each
rank packs its share into rows (peer_pytorch.build_step) and runs them as micro-batches of
one row. FSDP all-gathers each layer in every forward and backward, so every rank must run
the same number of micro-batches: a rank with fewer rows runs its shortest row again with
zero weight (counted in `filler_rows`; a real cost of FSDP with packing). Each rank's loss
is its pairs' sum divided by E/N: FSDP2 averages gradients over the N ranks, so the result
is the one-process gradient (sum over the E pairs, divided by E). Parameters, gradients and
AdamW states are bf16, as in the one-GPU peer; AdamW fused where the DTensor parameters
allow it, else foreach.

Reported (rank 0, one JSON line per configuration): samples/s = E per median step, the
FLOP model of peer_pytorch (summed over ranks), peak memory per GPU (the largest rank's
and each rank's). `--self-check` (float32, tiny Llama): the sharded step's loss and
gradient equal one unsharded process's on the same examples (what makes the timings a
fair peer).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_pytorch as pp  # noqa: E402

torch = None
dist = None


def deal_by_cost(exs: list, ids: list[int], ranks: int, shared: bool) -> list[list[int]]:
    """Examples to ranks, longest first, each to the rank with the fewest tokens so far."""
    cost = {e: sum(len(s) for s in exs[e]) + (0 if shared else len(exs[e][0])) for e in ids}
    share, load = [[] for _ in range(ranks)], [0] * ranks
    for e in sorted(ids, key=lambda e: (-cost[e], e)):
        r = min(range(ranks), key=lambda r: (load[r], r))
        share[r].append(e)
        load[r] += cost[e]
    return [sorted(s) for s in share]


def rank_microbatches(layout: str, exs: list, ids: list[int], rank: int, ranks: int, args, window):
    """This rank's micro-batches of a step, their loss weights (0 for a filler) and the
    number of fillers: every rank runs as many micro-batches as the rank with the most rows."""
    rows = [pp.build_step(layout, exs, share, micro_batch=1, pack_tokens=args.pack_tokens,
                          multiple=args.pad_multiple, window=window) if share else []
            for share in deal_by_cost(exs, ids, ranks, layout == "shared-packed")]
    mine = rows[rank]
    fillers = max(len(r) for r in rows) - len(mine)
    filler = min(mine or [r for rs in rows for r in rs], key=lambda r: r["row_tokens"])
    return mine + [filler] * fillers, [1.0] * len(mine) + [0.0] * fillers, fillers


def init_dist():
    global torch, dist
    pp._import_torch()
    import torch as _torch
    import torch.distributed as _dist
    torch, dist = _torch, _dist
    local = int(os.environ.get("LOCAL_RANK", 0))
    torch.cuda.set_device(local)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    return dist.get_rank(), dist.get_world_size(), torch.device("cuda", local)


def shard(model, reshard: bool = True):
    """fully_shard every decoder layer, then the root (embeddings, final norm, LM head)."""
    from torch.distributed.fsdp import fully_shard
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    for layer in inner.model.layers:
        fully_shard(layer, reshard_after_forward=reshard)
    fully_shard(model, reshard_after_forward=reshard)
    return model


def make_optimizer(params, lr: float):
    """AdamW with its state allocated (a step on zero gradients changes nothing): fused
    where the sharded parameters allow it, else foreach."""
    error = None
    for kind in ("fused", "foreach"):
        try:
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, **{kind: True})
            for p in params:
                p.grad = torch.zeros_like(p)
            opt.step()
            return opt, kind
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as exc:
            error = exc
        finally:
            for p in params:
                p.grad = None
    raise error


def backward_share(peer, mbs, weights, examples_per_step: int, ranks: int):
    """This rank's micro-batches, forward and backward; the step's loss summed over the ranks."""
    total = torch.zeros((), dtype=torch.float32, device=peer.device)
    for mb, w in zip(mbs, weights):
        # loss = sum / divisor; a filler's divisor is infinite: it runs, its gradient is zero.
        loss, _ = peer.microbatch(mb, examples_per_step / ranks if w else math.inf)
        total += loss * (w / ranks)
    dist.all_reduce(total)
    return total


def step(peer, mbs, weights, examples_per_step: int, ranks: int):
    """One DPO step over this rank's micro-batches; the global loss."""
    total = backward_share(peer, mbs, weights, examples_per_step, ranks)
    if peer.opt is not None:
        peer.opt.step()
    peer.policy.zero_grad(set_to_none=True)
    return total


def max_over_ranks(x: float) -> float:
    t = torch.tensor([x], dtype=torch.float64, device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t)


def gather(x: float) -> list[float]:
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, x)
    return out


def run_config(peer, args, arch, spec, profile, layout, exs, info, rank, ranks) -> dict:
    E, window = info["examples_per_step"], pp.arch_window(spec)
    n_steps = args.warmup + args.steps
    res = {"arch": arch, "profile": profile, "layout": layout, "examples_per_step": E, "gpus": ranks,
           "peer": "fsdp2", "steps": args.steps, "warmup": args.warmup, "pack_tokens": args.pack_tokens,
           "checkpointing": info["checkpointing"], "optimizer": info["optimizer"], **info["env"]}
    peer.use_attention(True)
    pp.free_memory()
    try:
        steps, fillers, stats = [], 0, []
        for s in range(n_steps):
            mbs, weights, f = rank_microbatches(layout, exs, list(range(s * E, (s + 1) * E)), rank, ranks, args,
                                                window)
            fillers += f
            stats.append({k: sum(mb[k] * w for mb, w in zip(mbs, weights))
                                for k in ("real_tokens", "row_tokens", "pred_rows", "vis_pairs")})
            steps.append(([pp.to_device(mb, peer.device) for mb in mbs], weights))
        for st in stats:  # this rank's, then summed over the ranks
            t = torch.tensor([st[k] for k in sorted(st)], dtype=torch.float64, device="cuda")
            dist.all_reduce(t)
            for k, v in zip(sorted(st), t.tolist()):
                st[k] = v
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        dist.barrier()
        for s in range(args.warmup):
            loss = step(peer, *steps[s], E, ranks)
        torch.cuda.synchronize()
        dist.barrier()
        times = []
        for s in range(args.warmup, n_steps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            loss = step(peer, *steps[s], E, ranks)
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        med = max_over_ranks(statistics.median(times))  # the step ends when the slowest rank's does
        timed = stats[args.warmup:]
        flops = sum(pp.step_flops(st, info["n_mat"], spec["hidden_size"], spec["vocab_size"],
                                  spec["num_attention_heads"], info["head_dim"]) for st in timed) / len(timed)
        peaks = gather(torch.cuda.max_memory_allocated() / 2**30)
        res.update({"status": "ok", "step_s_median": med, "samples_per_s": E / med,
                    "real_tokens_per_s": sum(st["real_tokens"] for st in timed) / len(timed) / med,
                    "flops_per_step": flops, "tflops": flops / med / 1e12,
                    "tflops_per_gpu": flops / med / 1e12 / ranks,
                    "mfu": flops / med / (args.peak_tflops * 1e12 * ranks),
                    "filler_rows": int(max_over_ranks(fillers)), "peak_gib": max(peaks),
                    "peak_gib_per_rank": peaks, "last_loss": float(loss)})
    except Exception as exc:  # noqa: BLE001 - one configuration fails, the run goes on
        res.update({"status": "OOM" if pp.is_oom(exc) else "error",
                    "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        traceback.print_exc()
    finally:
        peer.policy.zero_grad(set_to_none=True)
        pp.FLEX.block_mask = None
    pp.free_memory()
    return res


def build(args, spec, dtype, device, seed, std, ckpt: bool):
    """Policy and reference, identical on every rank (same seed), then sharded."""
    policy, ref = pp.build_models(spec, dtype, device, seed, std)
    if ckpt:
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return shard(policy), shard(ref)


def bench(args, rank, ranks, device) -> int:
    synth = pp.load_synth()
    pp.PROFILES_META.update(synth.PROFILES)
    profiles = list(synth.PROFILES) if args.profile == "all" else args.profile.split(",")
    layouts = args.layout.split(",")
    for lay in layouts:
        if lay not in ("paired-packed", "shared-packed"):
            sys.exit(f"--layout {lay}: the FSDP peer runs the packed layouts (paired-packed, shared-packed)")
    import transformers
    env = {"torch": torch.__version__, "transformers": transformers.__version__,
           "device": torch.cuda.get_device_name(0)}
    out = open(args.json, "a", encoding="utf-8") if args.json and rank == 0 else None
    results = []
    for arch in args.arch.split(","):
        spec = pp.ARCHS[arch]
        E = args.examples_per_step or pp.DEFAULT_EXAMPLES.get(arch, 16) * ranks
        ckpt = args.checkpointing == "on" or (args.checkpointing == "auto" and arch in pp.BIG_ARCHS)
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        policy, ref = build(args, spec, torch.bfloat16, device, args.seed, args.init_std, ckpt)
        head_dim = spec.get("head_dim") or spec["hidden_size"] // spec["num_attention_heads"]
        info = {"checkpointing": ckpt, "n_mat": pp.matrix_params(policy), "head_dim": head_dim, "env": env,
                "examples_per_step": E, "optimizer": "none"}
        peer = pp.Peer(policy, ref, flex_impl="custom", logits_at=args.logits_at, beta=args.beta,
                       window=pp.arch_window(spec), device=device)
        if not args.no_optimizer:
            trained = [p for p in policy.parameters() if p.requires_grad]
            peer.opt, kind = make_optimizer(trained, args.lr)
            info["optimizer"] = f"torch.optim.AdamW({kind}), bf16 sharded params and states"
        if rank == 0:
            print(f"# {arch} on {ranks} GPU(s), FSDP2: {info['n_mat'] / 1e9:.3f}B in decoder matrices, "
                  f"checkpointing {'on' if ckpt else 'off'}, optimizer {info['optimizer']}, {E} examples/step, "
                  f"built in {time.perf_counter() - t0:.1f} s", flush=True)
        for profile in profiles:
            n = E * (args.warmup + args.steps)
            if args.data_dir:
                exs = pp.read_examples(Path(args.data_dir) / f"{profile}.jsonl", n, spec["vocab_size"])
            else:
                exs = pp.make_examples(synth, profile, n, args.seed, spec["vocab_size"])
            for layout in layouts:
                r = run_config(peer, args, arch, spec, profile, layout, exs, info, rank, ranks)
                results.append(r)
                if rank == 0:
                    line = (f"{arch} {profile} {layout}: {r['status']}" if r["status"] != "ok" else
                            f"{arch} {profile} {layout}: {ranks} GPUs {r['samples_per_s']:.2f} samples/s, "
                            f"{r['tflops_per_gpu']:.0f} TFLOP/s per GPU, peak {r['peak_gib']:.1f} GiB, "
                            f"{r['filler_rows']} filler rows")
                    print(line + ("" if r["status"] == "ok" else f" {r.get('error', '')}"), flush=True)
                    if out:
                        out.write(json.dumps(r) + "\n")
                        out.flush()
        del peer, policy, ref
        pp.free_memory()
    if out:
        out.close()
    return 0 if all(r["status"] == "ok" for r in results) else 1


def self_check(args, rank, ranks, device) -> int:
    """float32 tiny Llama: FSDP2 over the ranks gives one process's loss and gradient."""
    torch.set_float32_matmul_precision("highest")
    synth = pp.load_synth()
    spec = {**pp.TINY, **pp.TINY_FAMILIES["llama"]}
    E = 6 * ranks + 1  # uneven on purpose: ranks get different numbers of rows
    exs = pp.make_examples(synth, "self-check", E, args.seed, spec["vocab_size"], median_ratio=(60, 1.5))
    failures = 0
    for layout in ("shared-packed", "paired-packed"):
        window = pp.arch_window(spec)
        # One process: the whole step on an unsharded copy (every rank computes it; no collectives).
        policy, ref = pp.build_models(spec, torch.float32, device, args.seed, 0.08)
        peer = pp.Peer(policy, ref, flex_impl="custom", logits_at="all", beta=args.beta, window=window,
                       device=device)
        peer.use_attention(True)
        mbs = [pp.to_device(mb, device) for mb in pp.build_step(layout, exs, list(range(E)), micro_batch=1,
                                                                 pack_tokens=256, multiple=128, window=window)]
        loss_one = sum(float(peer.microbatch(mb, E)[0]) for mb in mbs)
        grads_one = {n: p.grad.detach().clone() for n, p in policy.named_parameters() if p.grad is not None}
        del peer, policy, ref
        # Sharded: this rank's share only.
        policy, ref = pp.build_models(spec, torch.float32, device, args.seed, 0.08)
        shard(policy), shard(ref)
        peer = pp.Peer(policy, ref, flex_impl="custom", logits_at="all", beta=args.beta, window=window,
                       device=device)
        peer.use_attention(True)
        local, weights, fillers = rank_microbatches(layout, exs, list(range(E)), rank, ranks,
                                                    argparse.Namespace(pack_tokens=256, pad_multiple=128), window)
        total = backward_share(peer, [pp.to_device(mb, device) for mb in local], weights, E, ranks)
        worst = 0.0
        for n, p in policy.named_parameters():
            if p.grad is None:
                continue
            g = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
            ref_g = grads_one[n]
            worst = max(worst, float((g - ref_g).norm() / ref_g.norm().clamp_min(1e-30)))
        d_loss = abs(float(total) - loss_one)
        ok = d_loss < 1e-5 and worst < 1e-4
        failures += not ok
        if rank == 0:
            print(f"  {layout:14} {ranks} rank(s), {len(local)} micro-batches on rank 0 ({fillers} filler): "
                  f"|dloss| {d_loss:.1e}, worst gradient rel {worst:.1e}  {'PASS' if ok else 'FAIL'}", flush=True)
        del peer, policy, ref
        pp.free_memory()
    if rank == 0:
        print(f"fsdp self-check: {failures} failure(s)", flush=True)
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="llama-3.2-1b", help=f"one or more of {', '.join(pp.ARCHS)} (comma-separated)")
    ap.add_argument("--profile", default="hh-rlhf", help="dataset profile(s), comma-separated, or 'all'")
    ap.add_argument("--layout", default="shared-packed,paired-packed")
    ap.add_argument("--examples-per-step", type=int, default=0, help="global; default the one-GPU peer's per GPU")
    pp.add_step_options(ap)
    ap.add_argument("--json", help="rank 0 appends one JSON line per configuration")
    ap.add_argument("--self-check", action="store_true", help="FSDP2 equals one process (float32, tiny model)")
    args = ap.parse_args()
    rank, ranks, device = init_dist()
    pp.FLEX = pp.Flex(args.flex_compile)
    pp.register_attention()
    try:
        return self_check(args, rank, ranks, device) if args.self_check else bench(args, rank, ranks, device)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
