#!/usr/bin/env python3
"""docs/img/memory_parts.svg: duet estimate-memory's parts as stacked bars for the
configurations of the GPU benchmarks, beside the peaks measured on the H200
(duet bench, bench/peer_pytorch.py). Needs a CUDA build of duet (no GPU) and
python3-matplotlib (Debian's: /usr/bin/python3).

  /usr/bin/python3 scripts/memory_chart.py [--duet build/duet] [--out docs/img/memory_parts.svg]
"""
import argparse
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "bench/results/2026-12-02_session2_h200"

# (label, estimate-memory arguments, duet bench JSON, peer JSON files) — rows of 8192 tokens.
CONFIGS = [
    ("Llama-3.2-1B\nfull step", "--arch llama-3.2-1b", "1b_duet_steps.jsonl", ["1b_peer_steps.jsonl"]),
    ("Llama-3.1-8B\nno optimizer", "--arch llama-3.1-8b --no-optimizer", "8b_duet_steps.jsonl",
     ["8b_peer_steps.jsonl", "peer_steps_8b_rest.jsonl"]),
    ("Llama-3.1-8B\nLoRA r=16", "--arch llama-3.1-8b --use-peft --lora-r 16", None, []),
]
# Parts in stacking order, by the prefix of estimate-memory's names.
PARTS = [("weights", "weights (bf16)", "#4c72b0"), ("gradients", "gradients (fp32)", "#dd8452"),
         ("master", "master weights (fp32)", "#55a868"), ("moments", "AdamW moments (fp32)", "#c44e52"),
         ("reference", "reference model (bf16)", "#8172b3"), ("adapter", "LoRA adapter", "#937860"),
         ("activations", "activations and scratch", "#da8bc3"), ("other", "cuBLASLt workspace", "#8c8c8c")]


def estimate(duet: str, args: str) -> dict:
    out = subprocess.run([duet, "estimate-memory", "--json", "--context-gib", "0", "--gpu-gib", "141", *args.split()],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["parts_gib"]


def measured(name: str, key: str) -> list[float]:
    return [json.loads(line)[key] for line in open(RUNS / name)] if name else []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duet", default=str(ROOT / "build/duet"))
    ap.add_argument("--out", default=str(ROOT / "docs/img/memory_parts.svg"))
    a = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    width, x = 0.35, 0
    ticks, labels = [], []
    for label, args, duet_json, peer_jsons in CONFIGS:
        for k, (variant, extra) in enumerate([("selective", ""), ("checkpointing", " --gradient-checkpointing")]):
            parts = estimate(a.duet, args + extra)
            bottom, pos = 0.0, x + (k - 0.5) * width
            for key, prefix, color in PARTS:
                gib = sum(v for name, v in parts.items() if name.startswith(prefix))
                if gib > 0:
                    ax.bar(pos, gib, width * 0.9, bottom=bottom, color=color,
                           label=key if x == 0 and k == 0 or (key == "adapter" and variant == "selective") else None)
                bottom += gib
            ax.text(pos, bottom + 1, f"{bottom:.0f}", ha="center", fontsize=8)
        d = measured(duet_json, "memory_gib")
        if d:
            ax.plot([x - width / 2], [max(d)], marker="_", markersize=18, color="black",
                    label="duet measured (before selective recompute)" if x == 0 else None)
        p = [v for f in peer_jsons for v in measured(f, "peak_gib")]
        if p:
            ax.errorbar([x + width], [(min(p) + max(p)) / 2], yerr=[[(max(p) - min(p)) / 2]], fmt="o", color="black",
                        capsize=4, markersize=4, label="PyTorch peer measured (range)" if x == 0 else None)
        ticks.append(x), labels.append(label)
        x += 1.2
    ax.set_xticks(ticks, labels)
    ax.set_ylabel("GiB on one GPU (estimate: left bar as is, right bar with --gradient-checkpointing)")
    ax.set_title("duet's GPU memory by part (duet estimate-memory), rows of 8192 tokens; H200 measurements")
    handles, names = ax.get_legend_handles_labels()
    seen = {}
    for h, n in zip(handles, names):
        seen.setdefault(n, h)
    ax.legend(seen.values(), seen.keys(), fontsize=8, loc="upper right")
    ax.yaxis.label.set_size(8)
    fig.tight_layout()
    fig.savefig(a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
