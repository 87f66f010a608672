"""Op-level rules: from one release's dispatch table to native / fallback / composite / unknown_op.

In order, the first that applies decides (the dispatcher's own order for a dense MPS tensor):
1. a Python kernel registered for MPS in torch/backends/mps/__init__.py (overrides the yaml);
2. an ``MPS`` key in the op's ``dispatch:`` (alone or combined, e.g. "CPU, CUDA, MPS");
3. ``structured_delegate: X.out``: kernels are generated from the out= op, so X.out decides;
4. an op that only exists through another entry's ``autogen:``: its generated kernel calls that op;
5. ``CompositeExplicitAutograd(NonFunctional)``: a kernel for every backend that calls other ops;
6. ``CompositeImplicitAutograd`` or no dispatch at all: decomposes into other ops above the backend;
7. otherwise (backend keys, none MPS): the MPS fallback, i.e. CPU if PYTORCH_ENABLE_MPS_FALLBACK=1.
Composites (5, 6) are resolved through the caller's decomposition map {op: [ops it reaches]}.
"""

from __future__ import annotations

from dataclasses import dataclass

from matrix.predict.native_yaml import find_key, keys
from matrix.predict.opnames import canonical, display, printed
from matrix.predict.release_data import ReleaseData

FALLBACK = ("→ falls back to CPU with PYTORCH_ENABLE_MPS_FALLBACK=1 (warning: \"The operator '{op}' is not "
            "currently supported on the MPS backend and will fall back to run on the CPU\"), "
            "else NotImplementedError")
# A composite is as good as the worst op it reaches.
_RANK = {"native": 0, "composite": 1, "forced_cpu": 2, "fallback": 3, "error": 4}
EXPLICIT = ("CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional")


@dataclass(frozen=True)
class Verdict:
    status: str
    evidence: tuple[str, ...]
    reason: str  # the line that decided it, for one-line summaries of callees
    fallback_ops: tuple[str, ...] = ()  # the ops the CPU fallback runs (as its warning names them)
    composite: bool = False  # "native" only because every op it decomposes into is


class Resolver:
    def __init__(self, release: ReleaseData, decompositions=None):
        self.release = release
        self.yaml = f"native_functions.yaml {release.version}"
        self.decompositions = {canonical(k): [canonical(c) for c in v] for k, v in (decompositions or {}).items()}
        self.python: dict[str, list] = {}
        for reg in release.python_kernels or ():
            self.python.setdefault(reg["op"], []).append(reg)
        self._memo: dict[str, Verdict] = {}
        self.library = release.library  # binary.scan() of libtorch_cpu.dylib, or None
        self.registrations = (release.library or {}).get("registrations", {})

    def resolve(self, name: str) -> Verdict:
        if name not in self._memo:
            self._memo[name] = self._resolve(name, ())
        return self._memo[name]

    def _resolve(self, name: str, stack: tuple) -> Verdict:
        ops, version = self.release.ops, self.release.version
        if name not in ops:
            line = f"unknown op: not in native_functions.yaml of {version}"
            return Verdict("unknown_op", (line,), line)
        entry, notes = ops[name], []
        forced = self._library_overrides(name)
        if forced is not None:
            return forced
        for reg in self.python.get(name, ()):
            guard = f"; guarded by `if {reg['guard']}`" if reg["guard"] else ""
            line = (f"torch/backends/mps/__init__.py {version}: {reg['call']} registers {reg['kernel']} for MPS "
                    f"({reg['activation']}{guard})")
            if reg["active"]:
                return Verdict("native", (line, "→ runs on MPS through that Python kernel, which calls other aten "
                                                "ops on MPS; the yaml's dispatch for it is overridden"), line)
            notes.append(line + ": inactive, so the yaml decides")
        dispatch = entry.get("dispatch", {})
        mps = find_key(dispatch, "MPS")
        if mps:
            line = f"{self.yaml}: {name} dispatch {mps[0]}: {mps[1]} (an MPS kernel)"
            return Verdict("native", (*notes, line), line)
        if "delegate" in entry:
            line = (f"{self.yaml}: {name} has structured_delegate {entry['delegate']} (its kernels are generated "
                    f"from that out= op, so that op's dispatch decides)")
            target = ops.get(entry["delegate"], {})
            if self.registrations and not find_key(target.get("dispatch", {}), "MPS"):
                # torchgen emits MPS wrappers for a delegate's functional forms only from a yaml MPS key; a
                # hand registration of the out= op (2.0's BitwiseOps.mm: bitwise_and.Tensor_out) gives none
                lib = f"libtorch_cpu.dylib {version}"
                why = (f"{lib}: no MPS registration for {name} ({entry['delegate']} has no MPS key in the yaml, "
                       f"so no generated MPS wrapper exists for its functional forms)")
                return Verdict("fallback", (*notes, line, why, FALLBACK.format(op=printed(name))), why,
                               (name,))
            return self._via(name, entry["delegate"], line, stack, notes)
        if "autogen_of" in entry:
            target = self._autogen_target(name, entry["autogen_of"])
            line = (f"{self.yaml}: {name} exists only as `autogen` of {entry['autogen_of']}: its generated "
                    f"CompositeExplicitAutograd kernel calls {target}, then copies into out=")
            if self.library is not None:
                notes = [*notes, f"libtorch_cpu.dylib {version}: no MPS registration for {name} itself, as "
                                 f"expected: the generated out= kernel is registered for CompositeExplicitAutograd "
                                 f"and runs {target} on MPS"]
            return self._via(name, target, line, stack, notes)
        flat = keys(dispatch)
        explicit = [k for k in EXPLICIT if k in flat]
        if explicit:
            group, kernel = find_key(dispatch, explicit[0])
            line = (f"{self.yaml}: {name} dispatch {group}: {kernel} (no MPS key; that kernel serves every "
                    f"backend by calling other ops)")
            return self._composite(name, "composite-explicit", line, stack, notes)
        if not dispatch or "CompositeImplicitAutograd" in flat:
            line = (f"{self.yaml}: {name} has no dispatch entry (= CompositeImplicitAutograd: decomposes into "
                    f"other ops before reaching a backend)") if not dispatch else (
                    f"{self.yaml}: {name} dispatch CompositeImplicitAutograd: "
                    f"{find_key(dispatch, 'CompositeImplicitAutograd')[1]} (decomposes into other ops)")
            return self._composite(name, "composite-implicit", line, stack, notes)
        line = f"{self.yaml}: {name} dispatch {', '.join(dispatch)} (no MPS key)"
        return Verdict("fallback", (*notes, line, FALLBACK.format(op=printed(name))), line, (name,))

    def _library_overrides(self, name: str) -> Verdict | None:
        """MPSFallback.mm's own registrations (TORCH_LIBRARY_IMPL(aten, MPS, m)) beat the yaml: its boxed
        ``mps_fallback`` runs the op on the CPU whatever PYTORCH_ENABLE_MPS_FALLBACK says (e.g. linalg_svd,
        im2col in 2.2); ``mps_error_fallback`` raises."""
        reg = self.registrations.get(name)
        if reg is None or reg["kind"] == "wrapper":
            return None
        lib = f"libtorch_cpu.dylib {self.release.version}"
        if reg["kind"] == "custom":  # e.g. 2.0's BitwiseOps.mm registers bitwise_and.Tensor_out by hand
            line = f"{lib}: a hand-written MPS kernel is registered for {name!r} ({reg['symbol']}), not in the yaml"
            return Verdict("native", (line,), line)
        line = (f"{lib}: a TORCH_LIBRARY_IMPL(aten, MPS) block registers the boxed {reg['symbol']} for "
                f"{name!r}")
        if reg["kind"] == "cpu_fallback":
            return Verdict("forced_cpu", (line, "→ always runs on the CPU (the MPS backend copies to the CPU and "
                                                "back, with a one-time warning); no environment variable needed"),
                           line)
        return Verdict("error", (line, "→ raises NotImplementedError on MPS"), line)

    def _via(self, name: str, target: str, line: str, stack: tuple, notes: list) -> Verdict:
        if target in stack or target == name:
            return Verdict("composite", (*notes, line, f"cycle at {target}"), line)
        sub = self._resolve(target, (*stack, name))
        return Verdict(sub.status, (*notes, line, *sub.evidence), sub.reason, sub.fallback_ops, sub.composite)

    def _autogen_target(self, name: str, parent: str) -> str:
        """Generated out= kernels call the functional op; an in-place parent's hand-written sibling is it."""
        fn, _, overload = parent.partition(".")
        if fn.endswith("_") and not fn.endswith("__"):
            sibling = fn[:-1] + (f".{overload}" if overload else "")
            if sibling != name and "autogen_of" not in self.release.ops.get(sibling, {"autogen_of": 1}):
                return sibling
        return parent

    def _composite(self, name: str, kind: str, line: str, stack: tuple, notes: list) -> Verdict:
        listed = self.decompositions.get(name)
        callees = [c for c in dict.fromkeys(listed or ()) if c != name]  # a tracer may list the op itself
        if listed is None or (listed and not callees):
            why = "no decomposition-map entry" if listed is None else "the decomposition map lists only the op"
            return Verdict("composite", (*notes, line, f"{kind}: depends on callees ({why} for {display(name)})"),
                           line)
        head = (*notes, line, f"decomposition map: {display(name)} → "
                              f"{', '.join(display(c) for c in callees) or 'no other op'}")
        subs = []
        for callee in callees:
            if callee in stack:
                subs.append((callee, Verdict("composite", (), f"cycle back to {callee}")))
            else:
                subs.append((callee, self._resolve(callee, (*stack, name))))
        statuses = {v.status for _, v in subs}
        status = max(statuses, key=lambda s: _RANK.get(s, _RANK["composite"])) if statuses else "native"
        status = status if status in _RANK else "composite"  # an unknown callee leaves it undecided
        fallback_ops = tuple(dict.fromkeys(op for _, v in subs for op in v.fallback_ops))
        lines = [f"  {display(c)}: {v.status}: {v.reason}" for c, v in subs]
        tail = [FALLBACK.format(op=", ".join(printed(o) for o in fallback_ops))] if fallback_ops else []
        reason = f"{kind} via {', '.join(display(c) for c, v in subs if v.status == status) or 'nothing'}"
        return Verdict(status, (*head, *lines, *tail), reason, fallback_ops, composite=status == "native")
