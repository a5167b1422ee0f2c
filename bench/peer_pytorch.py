#!/usr/bin/env python3
"""The PyTorch peer of `duet bench`: what users run today, on one GPU, on the same data.

A DPO step (sigmoid loss, beta 0.1) with transformers' Llama / Mistral / Qwen2 in bf16
with random weights (built from the published architecture, nothing downloaded):
policy forward + backward, a frozen reference copy's forward every step (no_grad, as
TRL's DPOTrainer does without precomputed reference log-probs), then AdamW
(torch.optim.AdamW(fused=True) on the bf16 parameters: the peer's choice) unless
--no-optimizer. Three layouts of the same examples:

  paired-padded  chosen and rejected as two rows each, padded to the longest row of the
                 micro-batch, SDPA with a padding mask (TRL's default)
  paired-packed  (prompt+chosen, prompt+rejected) of an example kept together and packed
                 first-fit-decreasing into rows of --pack-tokens, position ids restarting
                 per sequence, FlexAttention block mask from document ids + causal
  shared-packed  one sequence per example [prompt | chosen | rejected] (the prefix-sharing
                 paper's layout), the rejected response's positions restarting at the
                 prompt's length, FlexAttention mask from visible_until (key j visible to
                 query i iff j <= i < visible_until[j]); the first token of each response
                 is predicted from the last prompt row (no duplicated token)

Packed rows are padded to a multiple of 128 tokens (--pad-multiple) and run as
micro-batches of one row; paired-padded runs micro-batches of B examples (2B rows), B
the largest power-of-two fraction of --examples-per-step that fits (or --micro-batch).
Log-probs only at response tokens: logits as transformers makes them, the predicting
rows gathered, log_softmax in float32, sums per response. The loss of a step is
summed over its pairs and divided by their number, whatever the layout.

Data: the six dataset profiles of the paper, generated exactly as
scripts/make_synthetic_data.py does (its functions are imported): the first
E*(warmup+steps) examples of `make_synthetic_data.py --profile P --seed S --format
pretokenized --vocab-size V` (V = the model's vocabulary), step s taking examples
[s*E, (s+1)*E). --data-dir DIR reads DIR/<profile>.jsonl instead (pretokenized).

    python3 bench/peer_pytorch.py --self-check
    python3 bench/peer_pytorch.py --arch llama-3.2-1b --profile hh-rlhf \\
        --layout paired-padded,paired-packed,shared-packed --json out.jsonl
    python3 bench/peer_pytorch.py --arch llama-3.1-8b --profile all --no-optimizer

FLOP model (docs/peer.md): per step 6*N per row token (policy) + 2*N per row token
(reference), N = the decoder's matrix weights (no embeddings, no LM head); the LM head
6*d*V + 2*d*V per predicting row; attention 4*D*Hq per visible (query, key) pair of real
tokens, x3 for the policy (forward + backward) and x1 for the reference. Recomputation
under activation checkpointing is not counted. MFU against --peak-tflops (989, H100/H200
SXM bf16 dense).
"""
from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import json
import os
import random
import statistics
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LAYOUTS = ("paired-padded", "paired-packed", "shared-packed")
CUSTOM_ATTN = "duet_peer_flex"

torch = None  # imported by _import_torch(), so the host-side code runs without torch
F = None

# ---------------------------------------------------------------- architectures
# Published config.json values (legacy keys: rope_theta / rope_scaling; transformers 5
# converts them to rope_parameters as it does for every config.json on the Hub).
LLAMA3_ROPE_1B3B = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
LLAMA3_ROPE_8B = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
ARCHS = {
    "llama-3.2-1b": {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
                     "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
                     "head_dim": 64, "vocab_size": 128256, "max_position_embeddings": 131072,
                     "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "rope_scaling": LLAMA3_ROPE_1B3B,
                     "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": 128001,
                     "hidden_act": "silu", "attention_bias": False, "mlp_bias": False},
    "llama-3.2-3b": {"model_type": "llama", "hidden_size": 3072, "intermediate_size": 8192,
                     "num_hidden_layers": 28, "num_attention_heads": 24, "num_key_value_heads": 8,
                     "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072,
                     "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "rope_scaling": LLAMA3_ROPE_1B3B,
                     "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": 128001,
                     "hidden_act": "silu", "attention_bias": False, "mlp_bias": False},
    "llama-3.1-8b": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
                     "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                     "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072,
                     "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "rope_scaling": LLAMA3_ROPE_8B,
                     "tie_word_embeddings": False, "bos_token_id": 128000, "eos_token_id": 128001,
                     "hidden_act": "silu", "attention_bias": False, "mlp_bias": False},
    "qwen2.5-7b": {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
                   "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
                   "vocab_size": 152064, "max_position_embeddings": 131072, "rms_norm_eps": 1e-6,
                   "rope_theta": 1000000.0, "rope_scaling": None, "tie_word_embeddings": False,
                   "use_sliding_window": False, "sliding_window": 131072, "max_window_layers": 28,
                   "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu"},
    # Mistral-7B-v0.1 (the release with the 4096-token sliding window).
    "mistral-7b": {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
                   "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                   "vocab_size": 32000, "max_position_embeddings": 32768, "rms_norm_eps": 1e-5,
                   "rope_theta": 10000.0, "rope_scaling": None, "sliding_window": 4096,
                   "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
                   "hidden_act": "silu"},
}
BIG_ARCHS = {"llama-3.1-8b", "qwen2.5-7b", "mistral-7b"}  # >= 7B: checkpointing on under auto
DEFAULT_EXAMPLES = {"llama-3.2-1b": 64, "llama-3.2-3b": 32}  # others: 16


def arch_window(spec: dict) -> int | None:
    """The attention window the model applies (Mistral's sliding_window; Qwen2 has it off)."""
    if spec["model_type"] == "mistral":
        return spec.get("sliding_window")
    if spec["model_type"] == "qwen2" and spec.get("use_sliding_window"):
        return spec.get("sliding_window")
    return None


# ---------------------------------------------------------------- data
def load_synth():
    path = REPO / "scripts" / "make_synthetic_data.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_data", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def synth_args(vocab: int) -> argparse.Namespace:
    """make_synthetic_data.py's defaults with --format pretokenized --vocab-size vocab."""
    return argparse.Namespace(format="pretokenized", vocab_size=vocab, length_sigma=0.5,
                              ratio_sigma=0.0, equal_responses=False)


def make_examples(synth, profile: str, n: int, seed: int, vocab: int, median_ratio=None):
    """The first n examples `make_synthetic_data.py --profile profile --seed seed
    --format pretokenized --vocab-size vocab` writes (same random stream)."""
    median, ratio = median_ratio or synth.PROFILES[profile]
    args = synth_args(vocab)
    rng = random.Random(f"{seed}/{profile}")
    out = []
    for _ in range(n):
        d = synth.line(rng, synth.example(rng, median, ratio, args), args)
        out.append((d["prompt_input_ids"], d["chosen_input_ids"], d["rejected_input_ids"]))
    return out


def read_examples(path: Path, n: int, vocab: int):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if len(out) == n:
                break
            if not line.strip():
                continue
            d = json.loads(line)
            ex = (d["prompt_input_ids"], d["chosen_input_ids"], d["rejected_input_ids"])
            if max(max(s) for s in ex) >= vocab:
                sys.exit(f"{path}: token id >= the model's vocabulary ({vocab}); regenerate with --vocab-size {vocab}")
            out.append(ex)
    if len(out) < n:
        sys.exit(f"{path}: {len(out)} examples, {n} needed (examples-per-step x (warmup + steps))")
    return out


# ---------------------------------------------------------------- layouts (pure Python)
def tri(n: int, window: int | None) -> int:
    """Visible (query, key) pairs of a causal sequence of n tokens: sum over p < n of min(p+1, W)."""
    if window is None or n <= window:
        return n * (n + 1) // 2
    return window * (window + 1) // 2 + (n - window) * window


def example_pairs(ex, shared: bool, window: int | None) -> int:
    p, c, r = (len(s) for s in ex)
    if shared:  # prompt counted once; a response token sees prompt and its own response
        return tri(p + c, window) + tri(p + r, window) - tri(p, window)
    return tri(p + c, window) + tri(p + r, window)


def ffd(lengths: list[int], cap: int) -> list[list[int]]:
    """First-fit decreasing: unit indices per row (an over-long unit gets a row of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows, free = [], []
    for i in order:
        for r, room in enumerate(free):
            if lengths[i] <= room:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(cap - lengths[i])
    return rows


def _keep(pred_pos_rows: list[tuple[int, int]], width: int):
    """Positions kept by logits_to_keep (union over rows) and the flat index of every
    target's predicting row into logits[:, keep] (shape [rows, K, V] -> [rows*K, V])."""
    keep = sorted({pos for _, pos in pred_pos_rows})
    where = {pos: k for k, pos in enumerate(keep)}
    k_len = len(keep)
    return keep, [row * k_len + where[pos] for row, pos in pred_pos_rows]


def build_padded(exs: list, ids: list[int], window) -> dict:
    """One micro-batch of paired-padded rows: chosen rows first, then rejected rows."""
    nb = len(ids)
    rows = [exs[e][0] + exs[e][1] for e in ids] + [exs[e][0] + exs[e][2] for e in ids]
    width = max(len(r) for r in rows)
    tok = [r + [0] * (width - len(r)) for r in rows]
    att = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
    pred, tgt, seg = [], [], []
    for k, e in enumerate(ids):
        p, c, r = exs[e]
        for t in range(len(c)):
            pred.append((k, len(p) - 1 + t)); tgt.append(c[t]); seg.append(2 * k)
        for t in range(len(r)):
            pred.append((nb + k, len(p) - 1 + t)); tgt.append(r[t]); seg.append(2 * k + 1)
    keep, pred_keep = _keep(pred, width)
    return {"kind": "padded", "ids": tok, "attn": att, "pos": None, "doc": None, "vu": None,
            "pred": [row * width + pos for row, pos in pred], "tgt": tgt, "seg": seg,
            "keep": keep, "pred_keep": pred_keep, "pairs": list(ids),
            "real_tokens": sum(len(r) for r in rows), "row_tokens": 2 * nb * width, "rows": 2 * nb,
            "pred_rows": len(pred), "vis_pairs": sum(example_pairs(exs[e], False, window) for e in ids)}


def build_packed_row(exs: list, ids: list[int], shared: bool, multiple: int, window,
                     leak: bool = False) -> dict:
    """One packed row holding the examples `ids` (each example's sequences kept together).

    shared: [prompt | chosen | rejected] per example, visible_until per key;
    paired: [prompt+chosen][prompt+rejected] as two documents, a document id per token.
    leak (self-check's negative control only): chosen keys stay visible to the rejected response.
    """
    tok, pos, doc, vu, pred, tgt, seg = [], [], [], [], [], [], []
    for k, e in enumerate(ids):
        p, c, r = exs[e]
        o, np_, nc, nr = len(tok), len(p), len(c), len(r)
        if shared:
            end = o + np_ + nc + nr
            tok += p + c + r
            pos += list(range(np_)) + list(range(np_, np_ + nc)) + list(range(np_, np_ + nr))
            vu += [end] * np_ + [end if leak else o + np_ + nc] * nc + [end] * nr
            for t in range(nc):  # row o+np-1 (last prompt token) predicts the first chosen token
                pred.append(o + np_ - 1 + t); tgt.append(c[t]); seg.append(2 * k)
            for t in range(nr):  # the first rejected token is predicted from the same prompt row
                pred.append(o + np_ - 1 if t == 0 else o + np_ + nc + t - 1); tgt.append(r[t]); seg.append(2 * k + 1)
        else:
            tok += p + c
            pos += list(range(np_ + nc))
            doc += [2 * k] * (np_ + nc)
            for t in range(nc):
                pred.append(o + np_ - 1 + t); tgt.append(c[t]); seg.append(2 * k)
            o2 = len(tok)
            tok += p + r
            pos += list(range(np_ + nr))
            doc += [2 * k + 1] * (np_ + nr)
            for t in range(nr):
                pred.append(o2 + np_ - 1 + t); tgt.append(r[t]); seg.append(2 * k + 1)
    real = len(tok)
    width = -(-real // multiple) * multiple
    for j in range(real, width):  # padding: a token that sees only itself (shared) / pads only (paired)
        tok.append(0)
        pos.append(0)
        if shared:
            vu.append(j + 1)
        else:
            doc.append(-1)
    keep, pred_keep = _keep([(0, q) for q in pred], width)
    return {"kind": "shared" if shared else "paired", "ids": [tok], "attn": None, "pos": [pos],
            "doc": None if shared else doc, "vu": vu if shared else None,
            "pred": pred, "tgt": tgt, "seg": seg, "keep": keep, "pred_keep": pred_keep,
            "pairs": list(ids), "real_tokens": real, "row_tokens": width, "rows": 1,
            "pred_rows": len(pred), "vis_pairs": sum(example_pairs(exs[e], shared, window) for e in ids)}


def build_step(layout: str, exs: list, ids: list[int], *, micro_batch: int, pack_tokens: int,
               multiple: int, window, leak: bool = False) -> list[dict]:
    """The micro-batches of one step over examples `ids`."""
    if layout == "paired-padded":
        return [build_padded(exs, ids[i:i + micro_batch], window) for i in range(0, len(ids), micro_batch)]
    shared = layout == "shared-packed"
    lengths = [sum(len(s) for s in exs[e]) + (0 if shared else len(exs[e][0])) for e in ids]
    return [build_packed_row(exs, [ids[i] for i in row], shared, multiple, window, leak)
            for row in ffd(lengths, pack_tokens)]


# ---------------------------------------------------------------- torch side
def _import_torch():
    global torch, F
    import torch as _torch
    import torch.nn.functional as _F
    torch, F = _torch, _F


def oom_types():
    return tuple({getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError})


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, oom_types()) or "out of memory" in str(exc).lower()


def free_memory():
    gc.collect()
    torch.cuda.empty_cache()


class Flex:
    """FlexAttention compiled once for the whole run; the block mask of the current
    micro-batch is set before each forward (read by the registered attention function)."""

    def __init__(self, mode: str):
        from torch.nn.attention.flex_attention import flex_attention
        dynamo_config = importlib.import_module("torch._dynamo.config")
        for name, value in (("cache_size_limit", 256), ("recompile_limit", 256),
                            ("accumulated_cache_size_limit", 4096), ("accumulated_recompile_limit", 4096)):
            if hasattr(dynamo_config, name):  # the names changed across torch releases
                setattr(dynamo_config, name, value)
        self.raw = flex_attention
        self.mode = mode
        self.fn = torch.compile(flex_attention, dynamic=(mode == "dynamic"))
        self.block_mask = None

    def set_mode(self, mode: str):
        self.mode = mode
        self.fn = torch.compile(self.raw, dynamic=(mode == "dynamic"))


FLEX: Flex | None = None


def peer_flex_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers attention function (AttentionInterface): q [B,Hq,T,D], k/v [B,Hkv,T,D];
    returns ([B,T,Hq,D], None). The mask (window included) is FLEX.block_mask."""
    block_mask = FLEX.block_mask
    if block_mask is None:
        raise RuntimeError("peer_flex_attention called without a block mask")
    out = FLEX.fn(query, key, value, block_mask=block_mask, scale=scaling,
                  enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2).contiguous(), None


def register_attention():
    try:
        from transformers import AttentionInterface
        AttentionInterface.register(CUSTOM_ATTN, peer_flex_attention)
    except ImportError:  # older layout of the same registry
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        ALL_ATTENTION_FUNCTIONS[CUSTOM_ATTN] = peer_flex_attention


def set_attn(model, name: str):
    if getattr(model.config, "_attn_implementation", None) == name:
        return
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(name)
    if getattr(model.config, "_attn_implementation", None) != name:
        model.config._attn_implementation = name
    if model.config._attn_implementation != name:
        raise RuntimeError(f"could not set attn_implementation={name!r} (have {model.config._attn_implementation!r})")


def probe_flex(heads: int, kv_heads: int, head_dim: int, dtype, device) -> str | None:
    """Runs the compiled FlexAttention on two small lengths (forward+backward, and no_grad);
    returns None or the error text."""
    from torch.nn.attention.flex_attention import create_block_mask
    try:
        for t in (256, 384):
            g = torch.Generator(device=device).manual_seed(t)
            q = torch.randn(1, heads, t, head_dim, device=device, dtype=dtype, generator=g, requires_grad=True)
            k = torch.randn(1, kv_heads, t, head_dim, device=device, dtype=dtype, generator=g, requires_grad=True)
            v = torch.randn(1, kv_heads, t, head_dim, device=device, dtype=dtype, generator=g, requires_grad=True)
            vu = torch.full((t,), t, dtype=torch.int32, device=device)
            vu[: t // 2] = t // 2
            mask = create_block_mask(forest_mask_mod(vu, None, None), None, None, t, t, device=device)
            out = FLEX.fn(q, k, v, block_mask=mask, enable_gqa=heads != kv_heads)
            out.float().sum().backward()
            with torch.no_grad():
                FLEX.fn(q, k, v, block_mask=mask, enable_gqa=heads != kv_heads)
        torch.cuda.synchronize()
        return None
    except Exception as exc:  # noqa: BLE001 - reported, then the caller falls back
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def forest_mask_mod(vu, pos, window):
    if window is None:
        def mask_mod(b, h, q, kv):
            return (kv <= q) & (q < vu[kv])
    else:
        def mask_mod(b, h, q, kv):
            return (kv <= q) & (q < vu[kv]) & (pos[q] - pos[kv] < window)
    return mask_mod


def document_mask_mod(doc, pos, window):
    if window is None:
        def mask_mod(b, h, q, kv):
            return (kv <= q) & (doc[q] == doc[kv])
    else:
        def mask_mod(b, h, q, kv):
            return (kv <= q) & (doc[q] == doc[kv]) & (pos[q] - pos[kv] < window)
    return mask_mod


def to_device(mb: dict, device) -> dict:
    """The micro-batch's tensors on the GPU (made before timing, like a prefetching loader)."""
    long = lambda x: torch.tensor(x, dtype=torch.long, device=device)  # noqa: E731
    out = dict(mb)
    out["ids"] = long(mb["ids"])
    out["attn"] = long(mb["attn"]) if mb["attn"] is not None else None
    out["pos"] = long(mb["pos"]) if mb["pos"] is not None else None
    out["pos32"] = torch.tensor(mb["pos"][0], dtype=torch.int32, device=device) if mb["pos"] is not None else None
    out["doc"] = torch.tensor(mb["doc"], dtype=torch.int32, device=device) if mb["doc"] is not None else None
    out["vu"] = torch.tensor(mb["vu"], dtype=torch.int32, device=device) if mb["vu"] is not None else None
    for key in ("pred", "tgt", "seg", "keep", "pred_keep"):
        out[key] = long(mb[key])
    out["npairs"] = len(mb["pairs"])
    out["pair_ids"] = long(mb["pairs"])
    return out


class Peer:
    """Policy + frozen reference, the DPO step, and the attention plumbing."""

    def __init__(self, policy, ref, *, flex_impl: str, logits_at: str, beta: float, window, device):
        self.policy, self.ref = policy, ref
        self.flex_impl, self.logits_at, self.beta, self.window, self.device = flex_impl, logits_at, beta, window, device
        self.opt = None
        self.attn = None

    def use_attention(self, packed: bool):
        name = "sdpa" if not packed else (CUSTOM_ATTN if self.flex_impl == "custom" else "flex_attention")
        if name == self.attn:
            return
        set_attn(self.policy, name)
        if self.ref is not None:
            set_attn(self.ref, name)
            # transformers' flex wrapper re-wraps torch.compile whenever module.training flips;
            # the reference runs in train mode on that path (no dropout in these models).
            self.ref.train(name == "flex_attention")
        self.attn = name

    def block_mask(self, mb):
        from torch.nn.attention.flex_attention import create_block_mask
        t = mb["ids"].shape[1]
        if mb["vu"] is not None:
            mod = forest_mask_mod(mb["vu"], mb["pos32"], self.window)
        else:
            mod = document_mask_mod(mb["doc"], mb["pos32"], self.window)
        return create_block_mask(mod, None, None, t, t, device=mb["ids"].device)

    def logps(self, model, mb, block_mask):
        """[npairs, 2] float32 sums of response log-probs (chosen, rejected)."""
        kwargs = {"input_ids": mb["ids"], "use_cache": False}
        if mb["kind"] == "padded":
            kwargs["attention_mask"] = mb["attn"]
        else:
            kwargs["position_ids"] = mb["pos"]
            if self.flex_impl == "hf":
                kwargs["attention_mask"] = block_mask
        if self.logits_at == "targets":
            kwargs["logits_to_keep"] = mb["keep"]
            index = mb["pred_keep"]
        else:
            index = mb["pred"]
        logits = model(**kwargs).logits
        rows = logits.reshape(-1, logits.shape[-1]).index_select(0, index)
        del logits
        token_lp = torch.log_softmax(rows.float(), dim=-1).gather(1, mb["tgt"].unsqueeze(1)).squeeze(1)
        sums = torch.zeros(2 * mb["npairs"], dtype=torch.float32, device=token_lp.device)
        sums.index_add_(0, mb["seg"], token_lp)
        return sums.view(mb["npairs"], 2)

    def microbatch(self, mb, total_pairs: int):
        """Reference forward, policy forward + backward; returns (loss, policy log-probs)."""
        bm = None
        if mb["kind"] != "padded":
            bm = self.block_mask(mb)
            FLEX.block_mask = bm
        with torch.no_grad():
            if self.ref is None:  # PEFT: the reference is the policy with its adapter off, as TRL does
                with self.policy.disable_adapter():
                    ref_lp = self.logps(self.policy, mb, bm)
            else:
                ref_lp = self.logps(self.ref, mb, bm)
        pol_lp = self.logps(self.policy, mb, bm)
        margin = (pol_lp[:, 0] - pol_lp[:, 1]) - (ref_lp[:, 0] - ref_lp[:, 1])
        loss = -F.logsigmoid(self.beta * margin).sum() / total_pairs
        loss.backward()
        if FLEX is not None:
            FLEX.block_mask = None
        return loss.detach(), pol_lp.detach()

    def step(self, mbs, total_pairs: int):
        losses = [self.microbatch(mb, total_pairs)[0] for mb in mbs]
        if self.opt is not None:
            self.opt.step()
        self.policy.zero_grad(set_to_none=True)
        return torch.stack(losses).sum()


def build_config(spec: dict):
    from transformers import LlamaConfig, MistralConfig, Qwen2Config
    cls = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config}[spec["model_type"]]
    d = {k: v for k, v in spec.items() if k != "model_type" and not (k == "rope_scaling" and v is None)}
    d["use_cache"] = False
    d["attention_dropout"] = 0.0
    return cls.from_dict(d)


def rope_summary(config) -> str:
    rp = getattr(config, "rope_parameters", None)
    if isinstance(rp, dict) and rp:
        return f"rope {rp.get('rope_type', '?')} theta {rp.get('rope_theta')}" + (
            f" factor {rp['factor']}" if "factor" in rp else "")
    sc = getattr(config, "rope_scaling", None) or {}
    return f"rope {sc.get('rope_type', 'default')} theta {getattr(config, 'rope_theta', '?')}" + (
        f" factor {sc['factor']}" if "factor" in sc else "")


def init_weights(model, seed: int, std: float, device, bias_std: float = 0.0):
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied weights appear once
            if p.ndim >= 2:
                p.normal_(0.0, std, generator=g)
            elif name.endswith("bias"):
                p.normal_(0.0, bias_std, generator=g) if bias_std > 0 else p.zero_()
            else:
                p.fill_(1.0)


def build_models(spec: dict, dtype, device, seed: int, std: float, bias_std: float = 0.0, lora=None):
    """Policy (train mode) and a frozen reference copy, random weights, on the GPU. With
    `lora` (a peft.LoraConfig) the policy is a PeftModel and there is no copy: the
    reference is the policy with the adapter disabled."""
    from transformers import AutoModelForCausalLM
    config = build_config(spec)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            policy = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    finally:
        torch.set_default_dtype(prev)
    policy.to(device)  # a no-op unless transformers built it elsewhere; dtypes are untouched
    for p in policy.parameters():
        if p.dtype != dtype:
            p.data = p.data.to(dtype)
    init_weights(policy, seed, std, device, bias_std)
    policy.config.use_cache = False
    policy.train()
    if lora is not None:
        from peft import get_peft_model
        return get_peft_model(policy, lora), None
    ref = copy.deepcopy(policy)
    ref.requires_grad_(False)
    ref.eval()
    return policy, ref


def matrix_params(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if p.ndim == 2 and ".layers." in n and "lora_" not in n)


def step_flops(stats: dict, n_mat: int, d: int, vocab: int, heads: int, head_dim: int) -> float:
    return (8.0 * n_mat * stats["row_tokens"] + 8.0 * d * vocab * stats["pred_rows"]
            + 4.0 * 4.0 * head_dim * heads * stats["vis_pairs"])


# ---------------------------------------------------------------- benchmark
def run_config(peer: Peer, args, arch: str, spec: dict, profile: str, layout: str, exs: list,
               info: dict) -> dict:
    E, window, device = info["examples_per_step"], arch_window(spec), peer.device
    n_steps = args.warmup + args.steps
    step_ids = [list(range(s * E, (s + 1) * E)) for s in range(n_steps)]
    res = {"arch": arch, "profile": profile, "layout": layout, "examples_per_step": E,
           "steps": args.steps, "warmup": args.warmup, "pack_tokens": args.pack_tokens,
           "pad_multiple": args.pad_multiple, "checkpointing": info["checkpointing"],
           "lora_r": args.lora_r if args.use_peft else 0,
           "optimizer": "none" if args.no_optimizer else "torch.optim.AdamW(fused=True), bf16 params and states",
           "attention": "sdpa" if layout == "paired-padded" else
           (f"flex custom AttentionInterface, torch.compile dynamic={FLEX.mode == 'dynamic'}"
            if args.flex_impl == "custom" else "flex transformers flex_attention (BlockMask as attention_mask)"),
           "logits_at": args.logits_at, "seed": args.seed, "beta": args.beta, **info["env"]}
    median, ratio = PROFILES_META[profile] if profile in PROFILES_META else (None, None)
    if ratio is not None:
        res["token_ceiling"] = (2 * ratio + 2) / (ratio + 2)
    peer.use_attention(layout != "paired-padded")
    free_memory()
    res["resident_gib"] = torch.cuda.memory_allocated() / 2**30
    micro = E
    mbs_all = None
    try:
        if layout == "paired-padded":
            micro = args.micro_batch or E
            if not args.micro_batch:  # largest B (halving from E) whose longest micro-batch fits
                longest = sorted(range(len(exs)), key=lambda e: -max(len(exs[e][0]) + len(exs[e][1]),
                                                                     len(exs[e][0]) + len(exs[e][2])))
                while True:
                    probe = to_device(build_padded(exs, longest[:micro], window), device)
                    ok = False
                    try:
                        peer.microbatch(probe, micro)
                        torch.cuda.synchronize()
                        ok = True
                    except Exception as exc:  # noqa: BLE001
                        if not is_oom(exc):
                            raise
                    peer.policy.zero_grad(set_to_none=True)
                    del probe
                    free_memory()
                    if ok:
                        break
                    if micro == 1:
                        raise torch.cuda.OutOfMemoryError("paired-padded: one example per micro-batch does not fit")
                    micro = max(1, micro // 2)
            res["micro_batch_examples"] = micro
        host = [build_step(layout, exs, ids, micro_batch=micro, pack_tokens=args.pack_tokens,
                           multiple=args.pad_multiple, window=window) for ids in step_ids]
        mbs_all = [[to_device(mb, device) for mb in step] for step in host]
        stats = [{k: sum(mb[k] for mb in step) for k in ("real_tokens", "row_tokens", "rows", "pred_rows", "vis_pairs")}
                 for step in host]
        del host
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        loss = None
        for s in range(args.warmup):
            loss = peer.step(mbs_all[s], E)
            if s == 0:
                torch.cuda.synchronize()
                res["first_step_s"] = time.perf_counter() - t0
        torch.cuda.synchronize()
        events = []
        w0 = time.perf_counter()
        for s in range(args.warmup, n_steps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            loss = peer.step(mbs_all[s], E)
            b.record()
            events.append((a, b))
        torch.cuda.synchronize()
        wall = time.perf_counter() - w0
        times = [a.elapsed_time(b) / 1e3 for a, b in events]
        timed = stats[args.warmup:]
        mean = lambda k: sum(st[k] for st in timed) / len(timed)  # noqa: E731
        med = statistics.median(times)
        flops = sum(step_flops(st, info["n_mat"], spec["hidden_size"], spec["vocab_size"],
                               spec["num_attention_heads"], info["head_dim"]) for st in timed) / len(timed)
        res.update({
            "status": "ok", "step_s_median": med, "step_s_mean": sum(times) / len(times),
            "step_s_min": min(times), "step_s_max": max(times), "wall_s_per_step": wall / len(times),
            "samples_per_s": E / med, "real_tokens_per_s": mean("real_tokens") / med,
            "row_tokens_per_s": mean("row_tokens") / med, "rows_per_step": mean("rows"),
            "real_tokens_per_step": mean("real_tokens"), "row_tokens_per_step": mean("row_tokens"),
            "pred_rows_per_step": mean("pred_rows"), "visible_pairs_per_step": mean("vis_pairs"),
            "flops_per_step": flops, "tflops": flops / med / 1e12,
            "mfu": flops / med / (args.peak_tflops * 1e12), "peak_tflops": args.peak_tflops,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
            "last_loss": float(loss) if loss is not None else None,
        })
    except Exception as exc:  # noqa: BLE001 - one configuration fails, the run goes on
        if is_oom(exc):
            res.update({"status": "OOM", "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
                        "device_gib": torch.cuda.get_device_properties(0).total_memory / 2**30,
                        "error": str(exc).splitlines()[0][:300] if str(exc) else "out of memory"})
        else:
            res.update({"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:500]}"})
            traceback.print_exc()
    finally:
        mbs_all = None
        peer.policy.zero_grad(set_to_none=True)
        if FLEX is not None:
            FLEX.block_mask = None
    free_memory()
    return res


PROFILES_META: dict = {}


def fmt_row(r: dict) -> str:
    head = f"{r['arch']:13} {r['profile']:14} {r['layout']:13}"
    if r.get("status") != "ok":
        extra = f"peak {r.get('peak_gib', 0):.1f} GiB of {r.get('device_gib', 0):.0f}" if r.get("status") == "OOM" \
            else r.get("error", "")[:80]
        return f"{head} {r.get('status', '?'):>6}  {extra}"
    mb = r.get("micro_batch_examples")
    rows = f"B={mb}" if mb else f"{r['rows_per_step']:.1f}r"
    return (f"{head} {rows:>6} {r['step_s_median'] * 1e3:9.1f} {r['samples_per_s']:9.2f} "
            f"{r['real_tokens_per_s'] / 1e3:8.1f} {r['row_tokens_per_s'] / 1e3:8.1f} {r['tflops']:7.1f} "
            f"{100 * r['mfu']:5.1f} {r['peak_gib']:7.1f}")


TABLE_HEAD = (f"{'arch':13} {'profile':14} {'layout':13} {'mb/rows':>6} {'step ms':>9} {'samples/s':>9} "
              f"{'ktok/s':>8} {'krow/s':>8} {'TFLOP/s':>7} {'MFU%':>5} {'peakGiB':>7}")


def bench(args) -> int:
    global FLEX
    device = "cuda"
    synth = load_synth()
    PROFILES_META.update(synth.PROFILES)
    profiles = list(synth.PROFILES) if args.profile == "all" else args.profile.split(",")
    layouts = list(LAYOUTS) if args.layout == "all" else args.layout.split(",")
    for p in profiles:
        if p not in synth.PROFILES:
            sys.exit(f"unknown profile {p!r}; known: {', '.join(synth.PROFILES)}")
    for lay in layouts:
        if lay not in LAYOUTS:
            sys.exit(f"unknown layout {lay!r}; known: {', '.join(LAYOUTS)}")
    import transformers
    env = {"torch": torch.__version__, "transformers": transformers.__version__,
           "device": torch.cuda.get_device_name(0)}
    results = []
    out = open(args.json, "a", encoding="utf-8") if args.json else None
    for arch in args.arch.split(","):
        if arch not in ARCHS:
            sys.exit(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
        spec = ARCHS[arch]
        E = args.examples_per_step or DEFAULT_EXAMPLES.get(arch, 16)
        ckpt = args.checkpointing == "on" or (args.checkpointing == "auto" and arch in BIG_ARCHS)
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        lora = None
        if args.use_peft:
            from peft import LoraConfig
            targets = "all-linear" if args.lora_target_modules == "all-linear" else args.lora_target_modules.split(",")
            lora = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                              target_modules=targets, task_type="CAUSAL_LM")
        policy, ref = build_models(spec, torch.bfloat16, device, args.seed, args.init_std, lora=lora)
        if ckpt:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        head_dim = spec.get("head_dim") or spec["hidden_size"] // spec["num_attention_heads"]
        info = {"checkpointing": ckpt, "n_mat": matrix_params(policy), "head_dim": head_dim, "env": env,
                "examples_per_step": E}
        peer = Peer(policy, ref, flex_impl=args.flex_impl, logits_at=args.logits_at, beta=args.beta,
                    window=arch_window(spec), device=device)
        if not args.no_optimizer:
            trained = [p for p in policy.parameters() if p.requires_grad]
            peer.opt = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.0, fused=True)
            for p in trained:  # allocate the optimizer state now (zero gradients: no update)
                p.grad = torch.zeros_like(p)
            peer.opt.step()
            policy.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        print(f"# {arch}: {sum(p.numel() for p in policy.parameters()) / 1e9:.2f}B parameters "
              f"({info['n_mat'] / 1e9:.3f}B in decoder matrices), {rope_summary(policy.config)}, "
              f"window {arch_window(spec)}, checkpointing {'on' if ckpt else 'off'}, "
              f"optimizer {'none' if args.no_optimizer else 'AdamW fused (bf16 states)'}, "
              f"{E} examples/step, built in {time.perf_counter() - t0:.1f} s; "
              f"resident {torch.cuda.memory_allocated() / 2**30:.1f} GiB", flush=True)
        if any(lay != "paired-padded" for lay in layouts) and args.flex_impl == "custom":
            err = probe_flex(spec["num_attention_heads"], spec["num_key_value_heads"], head_dim,
                             torch.bfloat16, device)
            if err and FLEX.mode == "dynamic":
                print(f"# FlexAttention with dynamic=True failed ({err}); using dynamic=False "
                      "(one compilation per row length)", flush=True)
                FLEX.set_mode("static")
                err = probe_flex(spec["num_attention_heads"], spec["num_key_value_heads"], head_dim,
                                 torch.bfloat16, device)
            if err:
                print(f"# FlexAttention probe failed: {err}", flush=True)
        print(TABLE_HEAD, flush=True)
        for profile in profiles:
            n = E * (args.warmup + args.steps)
            if args.data_dir:
                exs = read_examples(Path(args.data_dir) / f"{profile}.jsonl", n, spec["vocab_size"])
            else:
                exs = make_examples(synth, profile, n, args.seed, spec["vocab_size"])
            for layout in layouts:
                r = run_config(peer, args, arch, spec, profile, layout, exs, info)
                results.append(r)
                print(fmt_row(r), flush=True)
                if out:
                    out.write(json.dumps(r) + "\n")
                    out.flush()
        del peer, policy, ref
        free_memory()
    if out:
        out.close()
    print("\n" + TABLE_HEAD)
    for r in results:
        print(fmt_row(r))
    print("(samples/s = examples per median step; ktok/s real tokens, krow/s row tokens incl. padding; "
          f"MFU of {args.peak_tflops:g} TFLOP/s; FLOP model in docs/peer.md)", flush=True)
    return 0 if all(r["status"] == "ok" for r in results) else 1


# ---------------------------------------------------------------- self-check
TINY = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu"}
TINY_FAMILIES = {
    "llama": {"model_type": "llama", "rope_theta": 500000.0, "tie_word_embeddings": True,
              "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}},
    "mistral-window-24": {"model_type": "mistral", "rope_theta": 10000.0, "sliding_window": 24,
                          "tie_word_embeddings": False},
    "qwen2-bias": {"model_type": "qwen2", "rope_theta": 1000000.0, "use_sliding_window": False,
                   "sliding_window": 4096, "max_window_layers": 2, "tie_word_embeddings": False},
}


def self_check(args) -> int:
    """float32, tiny models: every layout gives paired-padded's log-probs, loss and gradients."""
    global FLEX
    device = "cuda"
    synth = load_synth()
    import transformers
    print(f"# self-check: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.cuda.get_device_name(0)}, float32", flush=True)
    torch.set_float32_matmul_precision("highest")  # float32 matrix products and FlexAttention in IEEE fp32
    failures = []
    E, cap, mult = 12, 256, 128
    for fam, extra in TINY_FAMILIES.items():
        spec = {**TINY, **extra}
        window = arch_window(spec)
        policy, ref = build_models(spec, torch.float32, device, args.seed, 0.08, bias_std=0.05)
        init_weights(ref, args.seed + 1, 0.08, device, bias_std=0.05)  # a different reference
        if FLEX.mode == "dynamic":
            err = probe_flex(spec["num_attention_heads"], spec["num_key_value_heads"],
                             spec["hidden_size"] // spec["num_attention_heads"], torch.float32, device)
            if err:
                print(f"  FlexAttention dynamic=True failed ({err}); dynamic=False from here on", flush=True)
                FLEX.set_mode("static")
        exs = make_examples(synth, "self-check", E, args.seed, spec["vocab_size"], median_ratio=(60, 1.5))
        ids = list(range(E))
        print(f"# {fam}: {rope_summary(policy.config)}, window {window}; example lengths (P,C,R) "
              f"{[tuple(len(s) for s in ex) for ex in exs[:4]]}...", flush=True)
        cases = [("paired-padded", "custom", "all", False, False, 5),
                 ("paired-padded", "custom", "targets", False, False, 5),
                 ("paired-packed", "custom", "all", False, False, 0),
                 ("shared-packed", "custom", "all", False, False, 0),
                 ("shared-packed", "custom", "targets", False, False, 0),
                 ("shared-packed", "custom", "all", True, False, 0),   # activation checkpointing
                 ("paired-packed", "hf", "all", False, False, 0),
                 ("shared-packed", "hf", "all", False, False, 0),
                 ("shared-packed", "custom", "all", False, True, 0)]   # negative control: leaky mask
        base = None
        for layout, impl, logits_at, ckpt, leak, micro in cases:
            name = f"{layout}/{'sdpa' if layout == 'paired-padded' else impl}/{logits_at}" + \
                   ("/ckpt" if ckpt else "") + ("/LEAK" if leak else "")
            peer = Peer(policy, ref, flex_impl=impl, logits_at=logits_at, beta=args.beta, window=window,
                        device=device)
            try:
                peer.use_attention(layout != "paired-padded")
                if ckpt:
                    policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
                host = build_step(layout, exs, ids, micro_batch=micro or E, pack_tokens=cap, multiple=mult,
                                  window=window, leak=leak)
                mbs = [to_device(mb, device) for mb in host]
                policy.zero_grad(set_to_none=True)
                lp = torch.zeros(E, 2, dtype=torch.float64, device=device)
                loss = 0.0
                for mb in mbs:
                    l, pl = peer.microbatch(mb, E)
                    loss += float(l)
                    lp[mb["pair_ids"]] = pl.double()
                grad = torch.cat([p.grad.flatten().double() for p in policy.parameters() if p.grad is not None])
                policy.zero_grad(set_to_none=True)
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                failures.append(f"{fam} {name}: {type(exc).__name__}: {str(exc)[:200]}")
                print(f"  {name:42} ERROR {type(exc).__name__}: {str(exc)[:200]}", flush=True)
                if base is None:
                    break  # no reference to compare with
                continue
            finally:
                if ckpt:
                    policy.gradient_checkpointing_disable()
            rows = len(host) if layout != "paired-padded" else sum(mb["rows"] for mb in host)
            if base is None:
                base = (lp, loss, grad)
                print(f"  {name:42} reference: {len(host)} micro-batches, {rows} rows, loss {loss:.6f}, "
                      f"mean logp/response {float(lp.mean()):.3f}", flush=True)
                continue
            d_lp = float((lp - base[0]).abs().max())
            d_loss = abs(loss - base[1])
            d_grad = float((grad - base[2]).norm() / base[2].norm())
            if leak:
                ok = d_lp > 1e-2
                verdict = "PASS (differs, as it must)" if ok else "FAIL (the check cannot see a wrong mask)"
            else:
                ok = d_lp < 1e-3 and d_loss < 1e-5 and d_grad < 1e-4
                verdict = "PASS" if ok else "FAIL"
            print(f"  {name:42} {len(host)} mb, {rows} rows: max|dlogp| {d_lp:.2e}  |dloss| {d_loss:.1e}  "
                  f"grad rel {d_grad:.1e}  {verdict}", flush=True)
            if not ok:
                failures.append(f"{fam} {name}: dlogp {d_lp:.2e} dloss {d_loss:.1e} dgrad {d_grad:.1e}")
        del policy, ref
        free_memory()
    print(f"self-check: {len(failures)} failure(s)" + ("" if not failures else ":\n  " + "\n  ".join(failures)),
          flush=True)
    return 1 if failures else 0


# ---------------------------------------------------------------- main
def add_step_options(ap: argparse.ArgumentParser) -> None:
    """The options of a step and its timing, shared with bench/peer_fsdp.py."""
    ap.add_argument("--pack-tokens", type=int, default=8192, help="packed row capacity")
    ap.add_argument("--pad-multiple", type=int, default=128, help="packed rows are padded to a multiple of this")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--checkpointing", choices=["auto", "on", "off"], default="auto",
                    help="activation checkpointing (non-reentrant); auto: on for >= 7B")
    ap.add_argument("--no-optimizer", action="store_true", help="no AdamW step (the paper's 8B setting on one GPU)")
    ap.add_argument("--flex-compile", choices=["dynamic", "static"], default="dynamic",
                    help="custom path: torch.compile(flex_attention, dynamic=...); falls back to static")
    ap.add_argument("--logits-at", choices=["all", "targets"], default="all",
                    help="all: logits at every row as transformers does by default; targets: logits_to_keep")
    ap.add_argument("--data-dir", help="read DIR/<profile>.jsonl (pretokenized) instead of generating")
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-6)
    ap.add_argument("--init-std", type=float, default=0.02)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--seed", type=int, default=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="llama-3.2-1b", help=f"one or more of {', '.join(ARCHS)} (comma-separated)")
    ap.add_argument("--profile", help="dataset profile(s), comma-separated, or 'all'")
    ap.add_argument("--layout", default="all", help=f"{', '.join(LAYOUTS)} (comma-separated) or 'all'")
    ap.add_argument("--examples-per-step", type=int, default=0,
                    help="examples (pairs) per optimizer step; default 64 (1B), 32 (3B), 16 (7-8B)")
    ap.add_argument("--micro-batch", type=int, default=0,
                    help="paired-padded: examples per micro-batch (default: the largest that fits)")
    add_step_options(ap)
    ap.add_argument("--flex-impl", choices=["custom", "hf"], default="custom",
                    help="custom: our function registered with AttentionInterface; hf: transformers' "
                         "flex_attention with the BlockMask passed as attention_mask")
    ap.add_argument("--use-peft", action="store_true",
                    help="LoRA through peft (the reference = the policy with the adapter disabled, as TRL)")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--lora-alpha", type=float, default=32)
    ap.add_argument("--lora-dropout", type=float, default=0.05)
    ap.add_argument("--lora-target-modules", default="all-linear")
    ap.add_argument("--json", help="append one JSON line per configuration")
    ap.add_argument("--self-check", action="store_true",
                    help="tiny float32 models: every layout's log-probs, loss, gradients = paired-padded's")
    args = ap.parse_args()
    if not args.self_check and not args.profile:
        ap.error("--profile is required (or --self-check)")
    if min(args.steps, args.pack_tokens, args.pad_multiple) < 1 or args.warmup < 0:
        ap.error("--steps, --pack-tokens, --pad-multiple must be >= 1 and --warmup >= 0")
    try:
        _import_torch()
    except ImportError as exc:
        print(f"peer_pytorch: torch is not installed ({exc}); nothing measured")
        return 2
    if not torch.cuda.is_available():
        print("peer_pytorch: no CUDA GPU; nothing measured")
        return 2
    global FLEX
    FLEX = Flex(args.flex_compile)
    register_attention()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    return self_check(args) if args.self_check else bench(args)


if __name__ == "__main__":
    sys.exit(main())
