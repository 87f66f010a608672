"""The chart: per (dtype, dims), the speedup against the CPU fallback (eager wall time) and the time over
the fused op (ranking timer), each against input size, one line per variant."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .load import SpeedError
from .recommend import geomean
from .render import dims_text
from .rows import EAGER_WALL

DTYPE_ORDER = ("float32", "float16", "bfloat16", "float64")


def chart(result, path) -> Path:
    import matplotlib  # optional: the command says so where it is missing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "opcompat"})  # small, reproducible SVG
    lines = defaultdict(lambda: defaultdict(list))  # (dtype, dims) -> variant -> [row]
    kinds = {}
    for r in result["rows"]:
        if r["speedup_vs_fallback"] is not None:
            lines[(r["dtype"], dims_text(r["dims"]))][r["variant"]].append(r)
            kinds[r["variant"]] = r["kind"]
    panels = sorted(lines, key=lambda k: (_dtype_rank(k[0]), k[1] == "all", k))
    if not panels:
        raise SpeedError("nothing to chart: no row has a speedup against the fallback")
    variants = sorted(kinds, key=lambda v: (kinds[v] != "fused", kinds[v] == "fallback", v))
    palette = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (14, 15)]  # greys: fallback
    colours = {v: palette[i % len(palette)] for i, v in enumerate(v for v in variants if kinds[v] == "case")}
    colours.update({v: "black" for v in variants if kinds[v] == "fused"})
    colours.update({v: "grey" for v in variants if kinds[v] == "fallback"})
    metrics = (("speedup_vs_fallback", f"speedup vs {result['fallback']} ({EAGER_WALL})"),
               ("slowdown_vs_fused", f"time / fused op ({result['timer']})"))
    cols = len(panels)
    fig, axes = plt.subplots(len(metrics), cols, figsize=(4.6 * cols, 3.9 * len(metrics)), squeeze=False)
    for row_index, (metric, ylabel) in enumerate(metrics):
        for ax, key in zip(axes[row_index], panels):
            for v in variants:
                by_size = defaultdict(list)
                for r in lines[key].get(v, ()):
                    if r.get(metric) is not None:
                        by_size[r["numel"]].append(r)
                if not by_size:
                    continue
                xs = sorted(by_size)
                ys = [geomean(r[metric] for r in by_size[n]) for n in xs]
                # Equivalence is per dtype: the line style is this panel's verdict.
                dashed = kinds[v] == "case" and not all(r["equivalent"] for n in xs for r in by_size[n])
                ax.plot(xs, ys, "--" if dashed else "-", marker="o", ms=3, lw=2.5 if kinds[v] == "fused" else 1.2,
                        color=colours[v])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{key[0]}, reduced over " + ("all dims" if key[1] == "all" else f"dims ({key[1]})"),
                         fontsize=9)
            ax.set_xlabel("elements")
            ax.grid(True, which="both", alpha=0.3)
        axes[row_index][0].set_ylabel(ylabel, fontsize=8)
    handles = [Line2D([], [], color=colours[v], lw=2.5 if kinds[v] == "fused" else 1.2, marker="o", ms=3)
               for v in variants]
    handles.append(Line2D([], [], color="black", ls="--", lw=1.2))
    labels = [*variants, "dashed: not equivalent\n(verdict at that dtype)"]
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    m = result["machine"]
    fig.suptitle(f"{m.get('device_name')} ({m.get('device')}), torch {m.get('torch')}: variants interleaved per "
                 f"round; {len(result['runs'])} repeat(s), geometric mean", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return path


def _dtype_rank(dtype):
    return DTYPE_ORDER.index(dtype) if dtype in DTYPE_ORDER else len(DTYPE_ORDER)
