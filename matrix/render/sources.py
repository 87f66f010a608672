"""Provenance, once per source: which files, machines, torch builds and harness commits made the matrix."""

from __future__ import annotations

from collections import OrderedDict

from matrix.render.common import bullet, short_machine, version_key


def _harness(data) -> str:
    info = data.get("opcompat") if isinstance(data.get("opcompat"), dict) else {}
    commit = (info.get("commit") or "")[:10]
    return commit + (" (modified)" if commit and info.get("dirty") else "") if commit else "not recorded"


def section(records, traces, speed) -> list:
    groups = OrderedDict()
    for path, data in sorted(records, key=lambda r: (r[1]["kind"], r[1]["machine"]["device"], r[1]["machine"]["slug"],
                                                     version_key(r[1]["torch"]["version"]))):
        key = (data["kind"], data["machine"]["device"], data["machine"]["slug"])
        groups.setdefault(key, []).append((path, data))
    out = ["## Sources", ""]
    for (kind, device, slug), items in groups.items():
        first = items[0][1]
        versions = ", ".join(d["torch"]["version"] for _, d in items)
        pattern = f"{kind}-{device}-<torch>" + ("" if kind == "predicted" else f"-{slug}") + ".json"
        machine = short_machine(first["machine"]["device_name"])
        created = sorted({d["created"][:10] for _, d in items})
        text = (f"**{kind} · {device} · {machine}** ({first['machine'].get('os', '')}): torch {versions}; "
                f"files `matrix/results/{pattern}`; created {', '.join(created)}")
        if kind == "measured":
            commits = OrderedDict()
            for _, d in items:
                commits.setdefault(_harness(d), []).append(d["torch"]["version"].split("+")[0])
            text += "; opcompat " + "; ".join(f"{c} ({', '.join(v)})" for c, v in commits.items())
        out += bullet(text + ".")
    if traces:
        out += bullet("**traces** (ops per case, traced under each release): torch "
                      + ", ".join(sorted(traces, key=version_key))
                      + "; files `matrix/results/traces/traced-<torch>.json`.")
    for path, data in speed:
        machine = data.get("machine") if isinstance(data.get("machine"), dict) else {}
        out += bullet(f"**speed · {machine.get('device', '?')} · {machine.get('device_name', '?')}**: torch "
                      f"{machine.get('torch', '?')}; file `matrix/results/{path.name}`.")
    out.append("")
    return out
