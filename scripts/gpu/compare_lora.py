#!/usr/bin/env python3
"""duet's LoRA adapters against peft (0.21) and transformers, both ways.

  scripts/gpu/compare_lora.py --duet BUILD/duet [--device cpu|cuda] [--work DIR] [--seed N] [--out report.json]

For two families (tiny random float32 models saved by transformers, as in
compare_logprobs.py: Llama with llama3 RoPE + GQA, Qwen2 with tied embeddings
and q/k/v biases) and ~30 random pre-tokenized examples:

 1. duet -> peft. `duet train --use-peft` (r 8, alpha 16, dropout 0.05, all
    linear layers; rsLoRA for Qwen2; 3 steps, shared+packed, --merge-adapter)
    writes OUT (adapter_config.json, adapter_model.safetensors) and OUT/merged.
    PeftModel.from_pretrained(base, OUT) must hold exactly the file's tensors
    (every lora_A/lora_B parameter equal to the file's) and give the log-probs
    of `duet logprobs --model BASE --adapter OUT` (paired, and shared with
    512-token rows); the adapter must have moved them away from the base's.
 2. peft -> duet. get_peft_model(base, LoraConfig(...)) as peft initialises it,
    saved with save_pretrained: (a) untouched (B = 0): duet scores it as the
    base and as peft does; (b) with B set to random values (a "trained"
    adapter): duet scores it as peft does; and `duet train --adapter` starts
    from it. Llama uses target_modules="all-linear", Qwen2 peft's default
    (q_proj, v_proj). duet's own initialisation is compared with peft's: the
    same bound (|A| <= 1/sqrt(in)) and, pooled over all A, the same standard
    deviation within 5%.
 3. merge. OUT/merged (duet's merge) against peft's merge_and_unload() of the
    adapter of 1: every weight within 1e-6 of the weight's scale, and the same
    log-probs from `duet logprobs --model OUT/merged` as from transformers on
    peft's merged model.

Tolerance, --device cpu: 1e-4 relative on sequence log-probs (fp32 throughout,
as compare_logprobs.py). --device cuda (bf16): compare_cuda.py's criterion, the
CUDA engine issue's: the reference is the peft model in float64 on its
bf16-rounded weights (base and adapter), and duet's error against it must be
no larger than that of the same peft model run in bf16 on the GPU, response by
response, beyond 2 standard errors of the mean difference; the models are
compare_cuda.py's (head dim 64, which the GPU kernels are built for). The
relative difference to the fp32 peft model is reported beside it.

Prints a table, writes a JSON report with --out, exits 1 on any failure.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_logprobs as cl  # noqa: E402  (the shared duet/transformers helpers)

TOLERANCE = {"cpu": 1e-4, "cuda": None}  # cuda: compare_cuda's statistical criterion (agree)
LORA_R, LORA_ALPHA = 8, 16
FAMILY_LORA = {  # family -> (duet's --lora-target-modules, peft's target_modules, rsLoRA)
    "llama_llama3_gqa": ("all-linear", "all-linear", False),
    "qwen2_tied_bias": ("all-linear", None, True),
}
LAYOUTS = {"paired": ["--layout", "paired"], "shared_pack512": ["--layout", "shared", "--pack-tokens", "512"]}


def duet_scores(args, model_dir, data, examples, layout, adapter=None):
    extra = ["--device", args.device, *LAYOUTS[layout]] + (["--adapter", adapter] if adapter else [])
    return cl.duet_logprobs(args.duet, model_dir, data, extra, examples)


def lora_parameters(model) -> dict:
    """The PeftModel's LoRA tensors under the names peft writes (the adapter name removed)."""
    return {name.replace(".default", ""): p.detach() for name, p in model.named_parameters() if ".lora_" in name}


def agree(args, lp, model, examples, tol) -> tuple[dict, bool]:
    """duet's log-probs `lp` against the (fp32) transformers/peft `model`: within
    `tol` relative on the CPU engine; on the CUDA engine, no larger an error
    against float64 than the model's own bf16 run (compare_cuda's criterion)."""
    theirs = cl.hf_logprobs(model, examples)
    c = cl.compare(lp, theirs)
    if args.device == "cpu":
        return c, c["max_rel"] <= tol
    import copy
    import torch
    import compare_cuda as cc
    _, ref = cc.references(model, examples)
    bf16 = copy.deepcopy(model).to(torch.bfloat16).cuda().eval()
    bf16_lp = cc.hf_logprobs_on(bf16, examples, "cuda", torch.float32)
    judged = cc.not_larger(lp, bf16_lp, ref)
    return {"max_rel_vs_fp32": c["max_rel"], "duet_vs_float64": cc.errors(lp, ref),
            "peft_bf16_vs_float64": cc.errors(bf16_lp, ref), "excess": judged["excess"],
            "stderr": judged["stderr"]}, judged["pass"]


def check(entry: dict, key: str, result: dict, ok: bool, failures: list[str], name: str) -> None:
    result["pass"] = bool(ok)
    entry[key] = result
    if not ok:
        failures.append(f"{name} {key}: {result}")


def duet_to_peft(name, args, folder, data, examples, entry, failures, tol):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    duet_targets, _, rslora = FAMILY_LORA[name]
    out = os.path.join(args.work, f"{name}_duet_lora")
    shutil.rmtree(out, ignore_errors=True)
    cl.run([args.duet, "train", "--model", folder, "--data", data, "--out", out, "--device", args.device,
            "--use-peft", "--lora-r", str(LORA_R), "--lora-alpha", str(LORA_ALPHA), "--lora-dropout", "0.05",
            "--lora-target-modules", duet_targets, *(["--use-rslora"] if rslora else []),
            "--max-steps", "3", "--batch-size", "8", "--learning-rate", "1e-2", "--layout", "shared",
            "--pack-tokens", "512", "--merge-adapter", "--no-progress"])
    peft_model = PeftModel.from_pretrained(cl.load_hf(folder), out).eval()
    file = load_file(os.path.join(out, "adapter_model.safetensors"))
    mine = lora_parameters(peft_model)
    same = set(mine) == set(file) and all(torch.equal(mine[k].float(), file[k].float()) for k in file)
    check(entry, "peft_loads_duet_tensors", {"tensors": len(file), "peft_lora_parameters": len(mine)}, same,
          failures, name)
    theirs = cl.hf_logprobs(peft_model, examples)
    base = cl.hf_logprobs(cl.load_hf(folder), examples)
    for layout in LAYOUTS:
        c, ok = agree(args, duet_scores(args, folder, data, examples, layout, adapter=out), peft_model, examples, tol)
        check(entry, f"duet_adapter_vs_peft_{layout}", c, ok, failures, name)
    moved = cl.compare(theirs, base)["max_rel"]
    check(entry, "trained_adapter_moved_scores", {"max_rel_vs_base": moved}, moved > 1e-4, failures, name)

    # 3. merge: duet's merged folder against peft's merge_and_unload().
    merged = peft_model.merge_and_unload()
    duet_merged = cl.load_hf(os.path.join(out, "merged"))
    ref = {k: v for k, v in merged.state_dict().items()}
    worst = 0.0
    for k, v in duet_merged.state_dict().items():
        scale = max(float(ref[k].abs().max()), 1e-30)
        worst = max(worst, float((v.float() - ref[k].float()).abs().max()) / scale)
    check(entry, "merged_weights_vs_merge_and_unload", {"max_rel_to_scale": worst}, worst <= 1e-6, failures, name)
    c, ok = agree(args, duet_scores(args, os.path.join(out, "merged"), data, examples, "paired"), merged, examples, tol)
    check(entry, "duet_merged_vs_peft_merged", c, ok, failures, name)


def peft_to_duet(name, args, folder, data, examples, entry, failures, tol, gen):
    import torch
    from peft import LoraConfig, get_peft_model
    _, peft_targets, rslora = FAMILY_LORA[name]
    base = cl.hf_logprobs(cl.load_hf(folder), examples)
    config = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=peft_targets,
                        use_rslora=rslora, task_type="CAUSAL_LM")
    model = get_peft_model(cl.load_hf(folder), config).eval()
    fresh = os.path.join(args.work, f"{name}_peft_fresh")
    shutil.rmtree(fresh, ignore_errors=True)
    model.save_pretrained(fresh)
    c, ok = agree(args, duet_scores(args, folder, data, examples, "shared_pack512", adapter=fresh), cl.load_hf(folder),
                  examples, tol)
    check(entry, "peft_fresh_adapter_equals_base", c, ok, failures, name)

    # duet's initialisation against peft's: the same distribution of A (B is 0 in both).
    from safetensors.torch import load_file
    duet_start = os.path.join(args.work, f"{name}_duet_init")
    shutil.rmtree(duet_start, ignore_errors=True)
    cl.run([args.duet, "train", "--model", folder, "--data", data, "--out", duet_start, "--device", args.device,
            "--use-peft", "--lora-r", str(LORA_R), "--lora-alpha", str(LORA_ALPHA), "--lora-target-modules",
            FAMILY_LORA[name][0], "--max-steps", "1", "--batch-size", "8", "--learning-rate", "0", "--no-progress"])
    ours, theirs = load_file(os.path.join(duet_start, "adapter_model.safetensors")), lora_parameters(model)
    # Every A divided by its bound 1/sqrt(in), pooled: U(-1, 1) for both if the initialisations agree
    # (std 1/sqrt(3); thousands of values, so 5% is many standard errors).
    keys = [k for k in theirs if ".lora_A." in k and k in ours]
    scaled = {"duet": [], "peft": []}
    for k in keys:
        bound = 1 / math.sqrt(theirs[k].shape[1])
        scaled["duet"].append(ours[k].flatten().double() / bound)
        scaled["peft"].append(theirs[k].flatten().double() / bound)
    stats = {side: {"std": float(torch.cat(v).std()), "max": float(torch.cat(v).abs().max()), "n": int(torch.cat(v).numel())}
             for side, v in scaled.items() if v}
    ok = len(stats) == 2 and all(s["max"] <= 1 + 1e-6 for s in stats.values()) and \
        abs(stats["duet"]["std"] / stats["peft"]["std"] - 1) <= 0.05
    check(entry, "duet_init_matches_peft_init", {"tensors": len(keys), **stats}, ok, failures, name)

    # A "trained" adapter: random B, saved by peft, scored by both.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if ".lora_B." in pname:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    trained = os.path.join(args.work, f"{name}_peft_trained")
    shutil.rmtree(trained, ignore_errors=True)
    model.save_pretrained(trained)
    theirs = cl.hf_logprobs(model, examples)
    for layout in LAYOUTS:
        c, ok = agree(args, duet_scores(args, folder, data, examples, layout, adapter=trained), model, examples, tol)
        check(entry, f"peft_adapter_in_duet_{layout}", c, ok, failures, name)
    moved = cl.compare(theirs, base)["max_rel"]
    check(entry, "peft_random_b_moved_scores", {"max_rel_vs_base": moved}, moved > 1e-4, failures, name)
    resumed = os.path.join(args.work, f"{name}_duet_from_peft")
    shutil.rmtree(resumed, ignore_errors=True)
    try:
        cl.run([args.duet, "train", "--model", folder, "--data", data, "--out", resumed, "--device", args.device,
                "--use-peft", "--adapter", trained, "--max-steps", "1", "--batch-size", "8", "--no-progress"])
        check(entry, "duet_trains_from_peft_adapter", {}, True, failures, name)
    except RuntimeError as err:
        check(entry, "duet_trains_from_peft_adapter", {"error": str(err)}, False, failures, name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duet", required=True, help="the duet binary")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="duet's engine (default cpu)")
    ap.add_argument("--work", default="/tmp/duet-lora", help="folder for models, adapters and data")
    ap.add_argument("--seed", type=int, default=None, help="default: a fresh one (printed)")
    ap.add_argument("--out", help="JSON report")
    args = ap.parse_args()

    import peft
    import torch
    import transformers
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"peft {peft.__version__} transformers {transformers.__version__} torch {torch.__version__} "
          f"device {args.device} seed {seed}", flush=True)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    os.makedirs(args.work, exist_ok=True)
    tol = TOLERANCE[args.device]
    if args.device == "cuda":  # compare_cuda's models (head dim 64: the GPU kernels' sizes) and criterion
        import compare_cuda  # noqa: F401  (sets cl.BASE and the example lengths on import)
    report = {"seed": seed, "device": args.device, "tolerance": tol, "peft": peft.__version__,
              "transformers": transformers.__version__, "families": {}}
    failures: list[str] = []
    for name in FAMILY_LORA:
        entry: dict = {}
        report["families"][name] = entry
        try:
            folder = os.path.join(args.work, name)
            cl.build_hf_model(name, folder, gen)
            examples = cl.make_examples(rng, cl.N_EXAMPLES, cl.BASE["vocab_size"])
            data = os.path.join(folder, "data.jsonl")
            cl.write_jsonl(data, examples)
            duet_to_peft(name, args, folder, data, examples, entry, failures, tol)
            peft_to_duet(name, args, folder, data, examples, entry, failures, tol, gen)
        except Exception as err:  # report and go on with the other family
            failures.append(f"{name}: {type(err).__name__}: {err}")

    print(f"{'family':18} {'check':40} {'value':>10}  result")
    for name, entry in report["families"].items():
        for key, r in entry.items():
            value = r.get("max_rel", r.get("max_rel_to_scale", r.get("max_rel_vs_base", r.get("excess", float("nan")))))
            extra = (f"  (duet's mean error minus peft bf16's, nats, +- {r['stderr']:.1e}; "
                     f"max rel vs fp32 {r['max_rel_vs_fp32']:.1e})") if "excess" in r else ""
            print(f"{name:18} {key:40} {value:10.2e}  {'PASS' if r['pass'] else 'FAIL'}{extra}")
    return cl.finish(report, failures, args.out)


if __name__ == "__main__":
    sys.exit(main())
