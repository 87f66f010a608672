"""Does the yaml's MPS dispatch match what the compiled library registers for MPS? (releases >= 2.0)

For every overload: "yaml says MPS kernel" (an ``MPS`` key in its own ``dispatch:``) against "binary has
an MPS registration" (an ``m.impl("op", ...)`` in a ``TORCH_LIBRARY_IMPL(aten, MPS)`` init function of
libtorch_cpu.dylib, binary.py). Each disagreement gets a class that explains it:

- ``structured_delegate``: the op has no dispatch of its own; torchgen generates MPS wrappers for the
  functional and in-place forms from the delegate's MPS key (``wrapper_MPS_add_Tensor`` for add.Tensor).
- ``autogen``: an ``autogen:`` out= form generated from an op with an MPS kernel.
- ``mps_fallback_registration``: MPSFallback.mm registers it by hand (forced CPU, or a hand-written kernel).
- ``composite_explicit_with_mps``: dispatch has both CompositeExplicitAutograd and MPS; fine either way.
- ``unexplained``: none of the above; printed so a reader can look.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from matrix.predict.native_yaml import find_key, keys
from matrix.predict.release_data import ReleaseData

AGREE, CLASSES = "agree", ("structured_delegate", "autogen", "mps_fallback_registration",
                           "composite_explicit_with_mps", "unexplained")


@dataclass(frozen=True)
class Check:
    op: str
    yaml_mps: bool
    binary_mps: bool
    verdict: str  # AGREE or one of CLASSES
    why: str


def check_release(release: ReleaseData) -> list[Check]:
    """One Check per overload in the yaml or the registrations; [] when the release has no library facts."""
    if not release.library:
        return []
    regs = release.library.get("registrations", {})
    out = []
    for op in sorted(set(release.ops) | set(regs)):
        entry = release.ops.get(op, {})
        yaml_mps = find_key(entry.get("dispatch", {}), "MPS") is not None
        reg = regs.get(op)
        out.append(_classify(release, op, entry, yaml_mps, reg))
    return out


def explain(release: ReleaseData, op: str) -> str | None:
    """An evidence line for an op whose yaml and binary disagree (None when they agree)."""
    if not release.library:
        return None
    entry = release.ops.get(op, {})
    check = _classify(release, op, entry, find_key(entry.get("dispatch", {}), "MPS") is not None,
                      release.library.get("registrations", {}).get(op))
    if check.verdict == AGREE:
        return None
    return f"cross-check ({check.verdict}): {check.why}"


def _classify(release: ReleaseData, op: str, entry: dict, yaml_mps: bool, reg: dict | None) -> Check:
    lib = f"libtorch_cpu.dylib {release.version}"
    binary_mps = reg is not None
    if yaml_mps == binary_mps and not (reg and reg["kind"] in ("cpu_fallback", "error_fallback")):
        return Check(op, yaml_mps, binary_mps, AGREE, "")
    if reg and reg["kind"] in ("cpu_fallback", "error_fallback", "custom") and not yaml_mps:
        return Check(op, yaml_mps, True, "mps_fallback_registration",
                     f"the yaml has no MPS key for {op}, but {lib} registers {reg['symbol']} for it by hand in a "
                     f"TORCH_LIBRARY_IMPL(aten, MPS) block (MPSFallback.mm or an op's .mm file): that registration "
                     f"is what runs, and the prediction follows it")
    if binary_mps and "delegate" in entry:
        target = release.ops.get(entry["delegate"], {})
        has = find_key(target.get("dispatch", {}), "MPS") is not None
        return Check(op, yaml_mps, True, "structured_delegate" if has else "unexplained",
                     f"{op} has structured_delegate {entry['delegate']}, whose MPS key makes torchgen emit "
                     f"{reg['symbol']} for it too" if has else
                     f"{op} delegates to {entry['delegate']}, which has no MPS key, yet {lib} has {reg['symbol']}")
    if binary_mps and "autogen_of" in entry:
        return Check(op, yaml_mps, True, "autogen",
                     f"{op} is autogen'd from {entry['autogen_of']}; torchgen registers the generated out= kernel "
                     f"for MPS as {reg['symbol']}")
    if yaml_mps and not binary_mps and "CompositeExplicitAutograd" in keys(entry.get("dispatch", {})):
        return Check(op, True, False, "composite_explicit_with_mps",
                     f"{op} lists CompositeExplicitAutograd and MPS; no MPS registration in {lib}")
    where = "registers " + reg["symbol"] if reg else "registers nothing"
    return Check(op, yaml_mps, binary_mps, "unexplained",
                 f"yaml {'has' if yaml_mps else 'has no'} MPS key for {op}; {lib} {where} for MPS")


def summary(results: dict[str, list[Check]]) -> dict:
    """{"checked", "agree", "classes": {class: count}, "examples": {class: [(release, op, why)]}}."""
    counts: Counter = Counter()
    examples: dict[str, list] = {}
    for version, checks in results.items():
        for c in checks:
            counts[c.verdict] += 1
            if c.verdict != AGREE and len(examples.setdefault(c.verdict, [])) < 5:
                examples[c.verdict].append((version, c.op, c.why))
    return {"checked": sum(counts.values()), "agree": counts[AGREE],
            "classes": {k: v for k, v in counts.items() if k != AGREE}, "examples": examples}
