#!/usr/bin/env python3
"""Compares `duet logprobs` with transformers' log-probs (float32) on random tiny models.

  scripts/gpu/compare_logprobs.py --duet BUILD/duet [--work DIR] [--seed N] [--out report.json]

For each family (tiny: hidden 64, 2 layers, 4 heads / 2 KV heads, vocab 500):
  llama_llama3_gqa   LlamaForCausalLM, llama3 RoPE scaling (theta 5e5, factor 8, low 1,
                     high 4, original context 64: sequences reach ~100, so the scaling matters)
  qwen2_tied_bias    Qwen2ForCausalLM, tied embeddings, non-zero q/k/v biases
  mistral_window_big MistralForCausalLM, sliding_window 4096 (longer than every sequence)
  mistral_window_16  MistralForCausalLM, sliding_window 16 (shorter than most sequences):
                     checks duet's window semantics against transformers' mask
                     (a query at position i sees keys at positions j with i - 16 < j <= i)
a model is built with transformers in float32 from a seeded generator (matrices
N(0, 0.15) so that log-probs are far from uniform, norms 1 + N(0, 0.3), biases
N(0, 0.3)), saved with save_pretrained (safetensors) and reloaded with from_pretrained;
~30 random pre-tokenized examples are written (prompt 1-60 tokens, responses 1-40);
then
  duet logprobs --model DIR --data FILE --layout paired
  duet logprobs --model DIR --data FILE --layout shared --pack-tokens 512
are compared with transformers the ordinary way: per example and response, input =
prompt + response, logits, log_softmax, gather the response tokens, sum (eager
attention, float32, CPU). Pass: max relative difference <= 1e-4 in both layouts.

duet -> transformers: `duet init --config DIR/config.json` (the config transformers wrote)
in float32 and bfloat16 must load with from_pretrained(output_loading_info=True) with no
missing, unexpected or mismatched keys, the same RoPE frequencies, and the same log-probs
as `duet logprobs` on that folder.

Prints a table, writes a JSON report with --out, exits 1 on any failure. torch and
transformers are imported only by the functions that need them, so the duet side
(data, invocation, comparison) also runs where they are missing.
"""
from __future__ import annotations

import argparse
import shutil
import json
import math
import os
import random
import subprocess
import sys

TOLERANCE = 1e-4
N_EXAMPLES = 30
MAX_PROMPT, MAX_RESPONSE = 60, 40
WEIGHT_STD = 0.15

BASE = {"vocab_size": 500, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5, "hidden_act": "silu", "initializer_range": WEIGHT_STD,
        "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2}

FAMILIES = {
    "llama_llama3_gqa": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "rope_theta": 500000.0,
                         "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64}},
    "qwen2_tied_bias": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "rope_theta": 1000000.0,
                        "tie_word_embeddings": True, "use_sliding_window": False, "sliding_window": None},
    "mistral_window_big": {"architectures": ["MistralForCausalLM"], "model_type": "mistral",
                           "rope_theta": 10000.0, "sliding_window": 4096},
    "mistral_window_16": {"architectures": ["MistralForCausalLM"], "model_type": "mistral",
                          "rope_theta": 10000.0, "sliding_window": 16},
}

LAYOUTS = {"paired": ["--layout", "paired"], "shared_pack512": ["--layout", "shared", "--pack-tokens", "512"]}


# ---- the duet side (standard library only) ----

def make_examples(rng: random.Random, n: int, vocab: int) -> list[dict]:
    def ids(lo, hi):
        return [rng.randrange(vocab) for _ in range(rng.randint(lo, hi))]
    out = []
    for _ in range(n):
        prompt, chosen = ids(1, MAX_PROMPT), ids(1, MAX_RESPONSE)
        rejected = ids(1, MAX_RESPONSE)
        while rejected == chosen:  # duet rejects identical responses
            rejected = ids(1, MAX_RESPONSE)
        out.append({"prompt": prompt, "responses": [chosen, rejected]})
    return out


def write_jsonl(path: str, examples: list[dict]) -> None:
    with open(path, "w") as f:
        for e in examples:
            f.write(json.dumps({"prompt_input_ids": e["prompt"], "chosen_input_ids": e["responses"][0],
                                "rejected_input_ids": e["responses"][1]}) + "\n")


def run(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def duet_logprobs(duet: str, model_dir: str, data: str, layout_args: list[str], examples: list[dict]) -> list[list[float]]:
    """Per example, [chosen, rejected] log-probs; checks order and token counts."""
    device = [] if "--device" in layout_args else ["--device", "cpu"]  # the fp32 engine unless asked otherwise
    lines = run([duet, "logprobs", "--model", model_dir, "--data", data, *device, *layout_args]).splitlines()
    if len(lines) != len(examples):
        raise RuntimeError(f"duet printed {len(lines)} lines for {len(examples)} examples")
    out = []
    for i, (line, e) in enumerate(zip(lines, examples)):
        j = json.loads(line)
        counts = [j["chosen_tokens"], j["rejected_tokens"]]
        if counts != [len(r) for r in e["responses"]] or j.get("line", i + 1) != i + 1:
            raise RuntimeError(f"duet line {i + 1} is not example {i + 1}: {line}")
        out.append([j["chosen_logp"], j["rejected_logp"]])
    return out


def compare(ours: list[list[float]], theirs: list[list[float]]) -> dict:
    worst_rel, worst_abs, where = 0.0, 0.0, None
    for i, (a_row, b_row) in enumerate(zip(ours, theirs)):
        for r, (a, b) in enumerate(zip(a_row, b_row)):
            if a is None or not math.isfinite(a) or not math.isfinite(b):
                return {"max_rel": math.inf, "max_abs": math.inf, "worst": [i, r, a, b]}
            rel = abs(a - b) / max(abs(b), 1e-30)
            worst_abs = max(worst_abs, abs(a - b))
            if rel >= worst_rel:
                worst_rel, where = rel, [i, r, a, b]
    return {"max_rel": worst_rel, "max_abs": worst_abs, "worst": where}


def family_config(name: str) -> dict:
    return {**BASE, **FAMILIES[name]}


# ---- the transformers side ----

def build_hf_model(name: str, folder: str, gen):
    """A random float32 model saved with save_pretrained into `folder`; returns it reloaded."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(family_config(name), f)
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").float()
    with torch.no_grad():
        for pname, p in model.named_parameters():  # tied weights appear once
            noise = torch.randn(p.shape, generator=gen)
            if "norm" in pname:
                p.copy_(1.0 + 0.3 * noise)
            elif pname.endswith(".bias"):
                p.copy_(0.3 * noise)
            else:
                p.copy_(WEIGHT_STD * noise)
    model.save_pretrained(folder)
    return load_hf(folder)


def load_hf(folder: str, with_info: bool = False):
    import torch
    from transformers import AutoModelForCausalLM
    out = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager",
                                               output_loading_info=with_info)
    model = out[0] if with_info else out
    model.eval()
    return (model, out[1]) if with_info else model


def hf_logprobs(model, examples: list[dict]) -> list[list[float]]:
    import torch
    out = []
    with torch.no_grad():
        for e in examples:
            row = []
            for resp in e["responses"]:
                ids = torch.tensor([e["prompt"] + resp])
                logits = model(input_ids=ids).logits[0].float()
                logp = torch.log_softmax(logits[:-1], dim=-1)  # row t predicts token t + 1
                p = len(e["prompt"])
                target = ids[0, p:]
                row.append(float(logp[p - 1:p - 1 + len(resp)].gather(1, target[:, None]).double().sum()))
            out.append(row)
    return out


def rope_info(model) -> tuple[bool, list[float]]:
    """Whether the model's RoPE frequencies are scaled (differ from theta^(-2i/d)), and the frequencies."""
    import torch
    inv_freq = model.model.rotary_emb.inv_freq.double()
    cfg = model.config
    theta = getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    plain = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    return bool(((inv_freq - plain).abs() / plain > 1e-3).any()), inv_freq.tolist()


# ---- the run ----

def finish(report: dict, failures: list[str], out: str | None) -> int:
    """Prints the failures, writes the JSON report (when asked), returns the exit code."""
    for f in failures:
        print("FAIL:", f)
    report["failures"] = failures
    if out:
        with open(out, "w") as f:
            json.dump(report, f, indent=2, default=str)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


def check_family(name: str, args, gen, rng: random.Random, report: dict, failures: list[str]) -> None:
    folder = os.path.join(args.work, name)
    model = build_hf_model(name, folder, gen)
    # The llama3 case is only a test if transformers really scales the frequencies.
    scaled, inv_freq = rope_info(model)
    entry = {"rope": "scaled" if scaled else "plain", "files": sorted(os.listdir(folder))}
    if scaled != ("rope_scaling" in FAMILIES[name]):
        failures.append(f"{name}: transformers' RoPE frequencies are {entry['rope']}, not as configured")

    examples = make_examples(rng, args.examples, BASE["vocab_size"])
    data = os.path.join(folder, "data.jsonl")
    write_jsonl(data, examples)
    theirs = hf_logprobs(model, examples)
    tokens = sum(len(r) for e in examples for r in e["responses"])
    entry["mean_logp_per_token"] = sum(sum(r) for r in theirs) / tokens
    entry["uniform_logp_per_token"] = -math.log(BASE["vocab_size"])
    for layout, layout_args in LAYOUTS.items():
        try:
            c = compare(duet_logprobs(args.duet, folder, data, layout_args, examples), theirs)
        except RuntimeError as err:
            c = {"max_rel": math.inf, "max_abs": math.inf, "error": str(err)}
        c["pass"] = c["max_rel"] <= TOLERANCE
        entry[layout] = c
        if not c["pass"]:
            failures.append(f"{name} {layout}: {c.get('error') or c}")

    # duet -> transformers: duet init from the config transformers wrote.
    entry["duet_init"] = {}
    for dtype in ("float32", "bfloat16"):
        dest = os.path.join(args.work, f"{name}_duet_init_{dtype}")
        res: dict = {}
        try:
            run([args.duet, "init", "--config", os.path.join(folder, "config.json"), "--out", dest, "--force",
                 "--seed", str(rng.randrange(2**32)), "--std", str(WEIGHT_STD), "--dtype", dtype])
            loaded, info = load_hf(dest, with_info=True)
            bad = {k: list(v) for k, v in info.items()
                   if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
            res["loading_problems"] = bad
            res["same_rope"] = rope_info(loaded) == (scaled, inv_freq)
            c = compare(duet_logprobs(args.duet, dest, data, LAYOUTS["paired"], examples),
                        hf_logprobs(loaded, examples))
            res.update(c)
            res["pass"] = not bad and res["same_rope"] and c["max_rel"] <= TOLERANCE
        except Exception as err:  # report and go on with the other checks
            res.update({"error": str(err), "pass": False})
        entry["duet_init"][dtype] = res
        if not res["pass"]:
            failures.append(f"{name} duet init {dtype}: {res}")
    # duet train -> transformers: a trained checkpoint (the output folder) loads
    # unchanged and gives the same log-probs; and training did move the weights.
    dest = os.path.join(args.work, f"{name}_duet_train")
    res = {}
    try:
        shutil.rmtree(dest, ignore_errors=True)
        run([args.duet, "train", "--model", folder, "--data", data, "--out", dest, "--max-steps", "2",
             "--batch-size", "8", "--learning-rate", "1e-2", "--layout", "shared", "--pack-tokens", "512",
             "--device", "cpu", "--no-progress"])
        loaded, info = load_hf(dest, with_info=True)
        bad = {k: list(v) for k, v in info.items()
               if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        trained_hf = hf_logprobs(loaded, examples)
        c = compare(duet_logprobs(args.duet, dest, data, LAYOUTS["paired"], examples), trained_hf)
        moved = compare(trained_hf, theirs)["max_rel"]
        res.update(c)
        res.update({"loading_problems": bad, "moved_from_start": moved})
        res["pass"] = not bad and c["max_rel"] <= TOLERANCE and moved > 1e-3
    except Exception as err:
        res.update({"error": str(err), "pass": False})
    entry["duet_train"] = res
    if not res["pass"]:
        failures.append(f"{name} duet train checkpoint: {res}")
    report["families"][name] = entry


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duet", required=True, help="the duet binary")
    ap.add_argument("--work", default="/tmp/duet-logprobs", help="folder for models and data")
    ap.add_argument("--seed", type=int, default=None, help="default: a fresh one (printed)")
    ap.add_argument("--examples", type=int, default=N_EXAMPLES)
    ap.add_argument("--out", help="JSON report")
    args = ap.parse_args()

    import torch
    import transformers
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"transformers {transformers.__version__} torch {torch.__version__} seed {seed}", flush=True)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    os.makedirs(args.work, exist_ok=True)
    report = {"seed": seed, "tolerance": TOLERANCE, "transformers": transformers.__version__,
              "torch": torch.__version__, "families": {}}
    failures: list[str] = []
    for name in FAMILIES:
        try:
            check_family(name, args, gen, rng, report, failures)
        except Exception as err:
            failures.append(f"{name}: {type(err).__name__}: {err}")

    print(f"{'family':20} {'rope':8} {'logp/token':>10} {'paired':>10} {'shared+pack':>11} "
          f"{'init f32':>10} {'init bf16':>10} {'trained':>10}  result")
    for name, e in report["families"].items():
        cells = [e.get(k, {}).get("max_rel", math.inf) for k in LAYOUTS]
        cells += [e["duet_init"].get(d, {}).get("max_rel", math.inf) for d in ("float32", "bfloat16")]
        cells.append(e.get("duet_train", {}).get("max_rel", math.inf))
        ok = (all(e[k]["pass"] for k in LAYOUTS) and all(d["pass"] for d in e["duet_init"].values())
              and e.get("duet_train", {}).get("pass", False))
        print(f"{name:20} {e['rope']:8} {e['mean_logp_per_token']:10.3f} "
              + " ".join(f"{c:10.2e}" if i != 1 else f"{c:11.2e}" for i, c in enumerate(cells))
              + f"  {'PASS' if ok else 'FAIL'}")
    print(f"(max relative difference duet vs transformers; tolerance {TOLERANCE:g}; uniform logp/token "
          f"{-math.log(BASE['vocab_size']):.3f})")
    return finish(report, failures, args.out)


if __name__ == "__main__":
    sys.exit(main())
