"""The printed summary: machine, repeat spread per size, and the recommendation table."""

from __future__ import annotations

from tabulate import tabulate

from .recommend import TIE
from .rows import EAGER_WALL

SHOW_OVER_LIMIT = 12  # rows above the spread limit printed; the result file has them all


def _ratio(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}x"


def _pct(x):
    return "-" if x is None else f"{x:.1%}"


def dims_text(d):
    return "all" if d is None else ",".join(map(str, d))


def spread_lines(sp) -> list:
    if not sp["by_timer"]:
        return []
    lines = [f"Ratio to the fused op, spread between {sp['repeats']} repeats (max/min - 1), per size "
             f"(>= {sp['min_numel']:,} elements; limit {sp['limit']:.0%}, ranking timer {sp['rank_timer']}):"]
    table = []
    for timer, t in sp["by_timer"].items():
        for s in t["by_size"]:
            table.append([timer, f"{s['numel']:,}", s["rows"], _pct(s["median"]), _pct(s["max"])])
    lines.append(tabulate(table, headers=["timer", "elements", "rows", "median", "max"], tablefmt="github"))
    over = sp["over_limit"]
    lines.append(f"{len(over)} row(s) above {sp['limit']:.0%} ({sp['rank_timer']})"
                 + "".join(f"\n  {o['variant']} {o['dtype']} {o['shape']} dims={o['dims']}: {o['spread']:.1%} "
                           f"(ratios {' / '.join(f'{r:.3f}' for r in o['ratios'])}; within repeats "
                           f"{' / '.join(_pct(w) for w in o['within_repeat_spread'])})"
                           for o in over[:SHOW_OVER_LIMIT]))
    return lines


def render(result, *, with_rows=False) -> str:
    m = result["machine"]
    bw = result["copy_bandwidth_GBps"]
    head = [f"Speed on {m.get('device')} ({m.get('device_name')}), torch {m.get('torch')}"
            + (f", CUDA {m['cuda']}" if m.get("cuda") else "") + f"; {result['fallback']}; "
            f"{len(result['runs'])} repeat(s)", result["timer_note"],
            "copy bandwidth: " + (f"{bw:.0f} GB/s" if bw else "not measured")]
    table = [[r["dtype"], dims_text(r["dims"]), "x".join(map(str, r["shape"])), r["variant"] or r.get("reason"),
              _ratio(r.get("ratio_vs_fused"), 3), _ratio(r.get("eager_ratio_vs_fused")),
              _ratio(r.get("speedup_vs_fallback"), 1),
              {True: "yes", False: "no"}.get(r.get("repeats_agree"), "-"), ", ".join(r.get("ties") or []),
              "" if r.get("eager_choice") in (None, r.get("variant")) else
              f"{r['eager_choice']} ({_ratio(r.get('eager_choice_ratio_vs_fused'))})",
              "" if r.get("portable") in (None, r.get("variant")) else r["portable"]]
             for r in result["recommendation"]]
    parts = ["\n".join(head), "\n".join(spread_lines(result["spread"])),
             f"Fastest equivalent decomposition per point (by {result['timer']}):",
             tabulate(table, headers=["dtype", "dims", "shape", "variant", f"time / fused ({result['timer']})",
                                      f"/ fused ({EAGER_WALL})", "vs fallback", "repeats agree",
                                      f"ties (within {TIE:.0%})", "eager pick", "no-caveat pick"],
                      tablefmt="github")]
    named = result.get("caveats") or {}
    if named:
        parts.append("Caveats of the recommended forms (where they are not equivalent):\n"
                     + "\n".join(f"  {v}: " + "\n    ".join(texts) for v, texts in named.items()))
    if with_rows:
        rows = [[r["repeat"], r["dtype"], dims_text(r["dims"]), "x".join(map(str, r["shape"])), r["variant"],
                 r["label"], "-" if r["median_s"] is None else f"{r['median_s'] * 1e6:.1f}",
                 _ratio(r.get("slowdown_vs_fused"), 3), _ratio((r.get("ratio") or {}).get(EAGER_WALL)),
                 _ratio(r["speedup_vs_fallback"], 1)] for r in result["rows"]]
        parts += ["All rows:", tabulate(rows, headers=["rep", "dtype", "dims", "shape", "variant", "label",
                                                       f"median us ({result['timer']})", "/ fused",
                                                       "/ fused (eager wall)", "vs fallback"], tablefmt="github")]
    return "\n\n".join(p for p in parts if p)
