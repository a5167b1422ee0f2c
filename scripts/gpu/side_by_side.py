#!/usr/bin/env python3
"""One table from duet bench's and bench/peer_pytorch.py's JSON lines: samples/s,
TFLOP/s and memory per (data, layout), duet beside the peer, duet's speed-up, and
the prefix-sharing speed-up (shared+packed over paired+packed) against the
token-count ceiling (2r+2)/(r+2).

  scripts/gpu/side_by_side.py FILE.jsonl... [--markdown] [--chart OUT.svg --title T]
                              [--breakdown-chart OUT.svg]

Lines are told apart by their keys (duet's carry "tool": "duet", the peer's
"samples_per_s"); a later line for the same (data, layout) replaces an earlier
one, so a peer run split over two calls reads as one. --chart draws samples/s by
profile x layout, duet beside the peer; --breakdown-chart duet's step time by
kind of op (duet bench --breakdown) as stacked bars (matplotlib: python3-matplotlib).
"""
import argparse
import json
import os
import sys

LAYOUT_OF_DUET = {"paired+packed": "paired-packed", "shared+packed": "shared-packed", "paired": "paired-padded"}
LAYOUT_ORDER = ["paired-padded", "paired-packed", "shared-packed"]


def load(paths):
    duet, peer = {}, {}
    for path in paths:
        for line in open(path):
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("tool") == "duet":
                profile = os.path.basename(r["data"]).removesuffix(".jsonl") if r.get("data") else r.get("profile")
                duet[(profile, LAYOUT_OF_DUET.get(r["layout"], r["layout"]))] = r
            elif "samples_per_s" in r or r.get("status"):
                peer[(r.get("profile"), r.get("layout"))] = r
    return duet, peer


def profiles_in(keys):
    seen = []
    for p, _ in keys:
        if p not in seen:
            seen.append(p)
    return seen


def fmt(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def table(duet, peer, markdown):
    head = ["data", "layout", "duet samples/s", "peer samples/s", "speed-up", "duet TFLOP/s", "duet MFU",
            "duet GiB", "duet estimate", "peer GiB", "memory ratio"]
    lines = []
    for profile in profiles_in(list(duet) + list(peer)):
        for layout in LAYOUT_ORDER:
            d, p = duet.get((profile, layout)), peer.get((profile, layout))
            if not d and not p:
                continue
            ds = (d or {}).get("samples_per_second")
            ps = p.get("samples_per_s") if p else None
            dm, pm = (d or {}).get("memory_gib"), (p or {}).get("peak_gib")
            lines.append([profile, layout, fmt(ds, ".2f") if ds else (d or {}).get("status", "-"),
                          fmt(ps, ".2f") if ps else (p or {}).get("status", "-"),
                          f"{ds / ps:.2f}x" if ds and ps else "-", fmt((d or {}).get("tflops"), ".1f"),
                          f"{d['mfu'] * 100:.1f}%" if d and "mfu" in d else "-", fmt(dm, ".1f"),
                          fmt((d or {}).get("memory_estimate_gib"), ".1f"), fmt(pm, ".1f"),
                          f"{dm / pm:.2f}" if dm and pm else "-"])
    emit(head, lines, markdown)


def sharing(duet, peer, markdown):
    """Prefix sharing's speed-up against the token-count ceiling, duet and peer."""
    head = ["data", "ceiling (2r+2)/(r+2)", "duet shared/paired", "of ceiling", "peer shared/paired", "of ceiling"]
    lines = []
    for profile in profiles_in(list(duet) + list(peer)):
        ceiling = next((r.get("token_ceiling") for (pr, _), r in peer.items() if pr == profile and
                        r.get("token_ceiling")), None)
        row = [profile, fmt(ceiling, ".3f")]
        for runs, key in ((duet, "samples_per_second"), (peer, "samples_per_s")):
            a, b = runs.get((profile, "shared-packed")), runs.get((profile, "paired-packed"))
            s = a[key] / b[key] if a and b and a.get(key) and b.get(key) else None
            row += [fmt(s, ".3f"), f"{s / ceiling:.3f}" if s and ceiling else "-"]
        lines.append(row)
    emit(head, lines, markdown)


def emit(head, lines, markdown):
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for l in lines:
            print("| " + " | ".join(l) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
        for l in [head] + lines:
            print("  ".join(str(x).rjust(w) if i > 1 else str(x).ljust(w) for i, (x, w) in enumerate(zip(l, widths))))
    print()


def chart(duet, peer, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    profiles = profiles_in(list(duet) + list(peer))
    layouts = [l for l in LAYOUT_ORDER if any(k[1] == l for k in list(duet) + list(peer))]
    series = [(tool, l) for l in layouts for tool in ("duet", "peer")]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    colours = {"paired-padded": ("#7f7f7f", "#c7c7c7"), "paired-packed": ("#1f77b4", "#aec7e8"),
               "shared-packed": ("#d62728", "#ff9896")}
    for i, (tool, layout) in enumerate(series):
        runs, key = (duet, "samples_per_second") if tool == "duet" else (peer, "samples_per_s")
        xs, ys = [], []
        for j, p in enumerate(profiles):
            r = runs.get((p, layout))
            if r and r.get(key):
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(r[key])
        ax.bar(xs, ys, width, label=f"{tool} {layout}",
               color=colours.get(layout, ("k", "grey"))[0 if tool == "duet" else 1],
               edgecolor="black", linewidth=0.4)
    ax.set_xticks(range(len(profiles)), profiles)
    ax.set_ylabel("samples/s")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=len(layouts))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def breakdown_chart(duet, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [(f"{p} {l}", r["breakdown_seconds"]) for (p, l), r in duet.items() if r.get("breakdown_seconds")]
    if not runs:
        raise SystemExit("--breakdown-chart: no duet line has breakdown_seconds (run duet bench --breakdown)")
    kinds = ["matmul", "attention", "lm_head", "elementwise", "optimizer", "host/idle"]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(runs) + 2.2))
    left = [0.0] * len(runs)
    totals = [sum(b.values()) or 1.0 for _, b in runs]  # shares of the step: profiles' steps differ 6x
    for kind in kinds:
        share = [100 * b.get(kind, 0.0) / t for (_, b), t in zip(runs, totals)]
        ax.barh(range(len(runs)), share, left=left, label=kind)
        left = [a + b for a, b in zip(left, share)]
    ax.set_yticks(range(len(runs)), [f"{name} ({1e3 * t:.0f} ms)" for (name, _), t in zip(runs, totals)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the step (%), CUDA events around every op")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=len(kinds), loc="upper center", bbox_to_anchor=(0.5, -0.3))
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--chart")
    ap.add_argument("--title", default="samples/s, duet and the PyTorch peer, same GPU, same examples")
    ap.add_argument("--breakdown-chart")
    a = ap.parse_args()
    duet, peer = load([f for f in a.files if os.path.exists(f)])
    if not duet and not peer:
        print("no results in " + " ".join(a.files))
        return 1
    table(duet, peer, a.markdown)
    sharing(duet, peer, a.markdown)
    if a.chart:
        chart(duet, peer, a.chart, a.title)
    if a.breakdown_chart:
        breakdown_chart(duet, a.breakdown_chart, "duet: device time per step by kind of op")
    return 0


if __name__ == "__main__":
    sys.exit(main())
