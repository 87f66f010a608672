"""What the renderer knows, read once from the result files and the per-release traces.

Two rules live here:

- a release's cells use the ops traced on that release: its trace file (matrix/traces.py), else the op
  list of its own measured run(s); per-case op lists come from that release's trace file, or, where only
  the measured run's op list exists, from another release's trace whose op list is exactly the same (said
  in the cell's note). A release with neither is "not traced", never filled from another release;
- MPS cells come from a measured MPS file of that release when there is one, else from the prediction.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from packaging.version import InvalidVersion, Version

from matrix import results
from matrix.predicted_rows import ops_at
from matrix.render.common import minor, version_key

# Statuses that keep an op on the device (the predictor's and the probe's words).
ON_DEVICE = ("native", "native_macos", "composite_mps", "composite")
FELL_BACK = ("fallback", "forced_cpu", "not_implemented")
NOT_TRACED = "not traced"

_NEEDS_MACOS = re.compile(r"needs mac ?OS (\d+(?:\.\d+)?)\+", re.IGNORECASE)
_BACKEND_MACOS = re.compile(r"MPS backend is supported on mac ?OS (\d+(?:\.\d+)?)\+", re.IGNORECASE)


def _macos_key(text):
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return Version("0")


def newest(versions):
    """The newest macOS of a few ('14', '14.0', '15.0' -> '15.0'), None for none."""
    found = [v for v in versions if v]
    return max(found, key=_macos_key) if found else None


class Model:
    def __init__(self, records, traces):
        self.records = records
        self.traces = traces  # {release: trace record}
        self._rows, self._traced, self._backend = {}, {}, {}
        by_release = OrderedDict()
        for _, data in sorted(records, key=lambda r: version_key(r[1]["torch"]["version"])):
            if data["machine"]["device"] == "mps":
                by_release.setdefault(results.release(data["torch"]["version"]), []).append(data)
        # A measured MPS file replaces the prediction for its release.
        self.mps = OrderedDict((r, next((d for d in files if d["kind"] == "measured"), files[0]))
                               for r, files in by_release.items())
        self.measured = OrderedDict()
        for _, data in sorted(records, key=lambda r: (version_key(r[1]["torch"]["version"]), r[1]["machine"]["slug"])):
            if data["kind"] == "measured":
                self.measured.setdefault(data["machine"]["device"], []).append(data)

    # -- what was traced on a release -----------------------------------------------------------------
    def traced_ops(self, release):
        """(ordered op list traced on ``release``, where from) or (None, why)."""
        if release not in self._traced:
            self._traced[release] = self._traced_ops(release)
        return self._traced[release]

    def _traced_ops(self, release):
        if release in self.traces:
            return list(self.traces[release]["ops"]), f"trace of torch {release}"
        ops = OrderedDict()
        for data in (d for files in self.measured.values() for d in files):
            if results.release(data["torch"]["version"]) == release:
                for row in data["ops"]:
                    ops.setdefault(row["op"], None)
        if ops:
            return list(ops), f"measured run on torch {release}"
        return None, f"nothing traced on torch {release}"

    def case_ops(self, release):
        """({case: {trace dtype: [(op, dtype)]}}, note) for ``release``, or (None, why)."""
        if release in self.traces:
            return _case_ops(self.traces[release]), ""
        ops, why = self.traced_ops(release)
        if ops is None:
            return None, why
        for other, trace in sorted(self.traces.items(), key=lambda t: _distance(t[0], release)):
            if set(trace["ops"]) == set(ops):
                return _case_ops(trace), (f"per-case ops traced on {minor(other)}; the measured run of this release "
                                          "traced the same op set")
        return None, "no per-case trace on this release (its op set differs from every traced release)"

    # -- MPS ------------------------------------------------------------------------------------------
    def mps_releases(self):
        return list(self.mps)

    def backend_macos(self, release):
        """The oldest macOS the release's MPS backend runs on, when its file says (a field, or its evidence)."""
        if release not in self._backend:
            self._backend[release] = self._backend_macos(self.mps[release])
        return self._backend[release]

    def _backend_macos(self, data):
        found = data.get("min_macos") or data["machine"].get("min_macos")
        if found:
            return str(found)
        quoted = {m.group(1) for row in data["ops"] for line in row.get("evidence", ())
                  for m in _BACKEND_MACOS.finditer(str(line))}
        return newest(quoted)

    def mps_status(self, release, op, dtype):
        """(status, min macOS beyond the backend's own or None); status NOT_TRACED when the op was not
        traced on that release, 'unknown' when it was traced but the file has no row for it."""
        traced, _ = self.traced_ops(release)
        data = self.mps[release]
        if traced is not None and op not in traced:
            return NOT_TRACED, None
        if traced is None and data["kind"] == "predicted":
            return NOT_TRACED, None
        if id(data) not in self._rows:
            self._rows[id(data)] = {(r["op"], r["dtype"]): r for r in data["ops"]}
        row = self._rows[id(data)].get((op, dtype))
        if row is None:  # a measured file did not probe that dtype; a prediction has no row for the op
            return (NOT_TRACED if data["kind"] == "measured" else "unknown"), None
        return row["status"], self._row_macos(release, row)

    def _row_macos(self, release, row):
        if row["status"] not in ON_DEVICE:
            return None
        gate = row.get("min_macos")
        if not gate:
            prefix = f"{row['dtype']}:"
            gate = newest({m.group(1) for line in row.get("evidence", ()) if str(line).startswith(prefix)
                           for m in _NEEDS_MACOS.finditer(str(line))})
        backend = self.backend_macos(release)
        if gate and (backend is None or _macos_key(gate) > _macos_key(backend)):
            return str(gate)
        return None

    def mps_case(self, release, case, dtype):
        """(runs on MPS: True/False/None, [ops that fall back], min macOS or None, note)."""
        data = self.mps[release]
        if data["kind"] == "measured":
            row = next((r for r in data["cases"] if r["case"] == case and r["dtype"] == dtype), None)
            if row is None:
                return None, [], None, "not probed"
            return row["runs_on_device"], list(row.get("fallback_ops") or ()), None, ""
        by_case, note = self.case_ops(release)
        if by_case is None or case not in by_case:
            return None, [], None, note or f"{case} not traced on {minor(release)}"
        fell, blocked, gates = [], [], []
        for op, at in ops_at(by_case[case], dtype):
            status, gate = self.mps_status(release, op, at)
            if status in FELL_BACK:
                fell.append(op)
            elif status not in ON_DEVICE:
                blocked.append(status)
            gates.append(gate)
        if blocked:
            return False, sorted(set(fell)), None, ", ".join(sorted(set(blocked)))
        return not fell, sorted(set(fell)), newest(gates), note

    # -- verdicts -------------------------------------------------------------------------------------
    def verdict_files(self, device, release=None):
        """The measured files of ``device`` with verdicts: those of ``release`` when it was measured, else those
        of the newest measured release (verdicts change between releases: never pooled across them)."""
        files = [d for d in self.measured.get(device, ()) if d["verdicts"]]
        if not files:
            return []
        same = [d for d in files if results.release(d["torch"]["version"]) == release]
        if same:
            return same
        newest_release = max((results.release(d["torch"]["version"]) for d in files), key=version_key)
        return [d for d in files if results.release(d["torch"]["version"]) == newest_release]

    def equivalent(self, device, case, dtype, release=None):
        """True when every verdict of ``case`` at ``dtype`` on ``device`` says equivalent; None: not judged."""
        rows = [v for d in self.verdict_files(device, release) for v in d["verdicts"]
                if v["case"] == case and v["dtype"] == dtype]
        if not rows:
            return None
        return all(v["equivalent"] for v in rows)

    def causes(self, device, case, dtype, release=None):
        rows = [v for d in self.verdict_files(device, release) for v in d["verdicts"]
                if v["case"] == case and v["dtype"] == dtype and not v["equivalent"]]
        return list(OrderedDict((c, None) for v in rows for c in (v.get("causes") or ["differs"])))

    def judged_cases(self):
        names = OrderedDict()
        for files in self.measured.values():
            for data in files:
                for v in data["verdicts"]:
                    names.setdefault(v["case"], None)
        return list(names)


def _distance(a: str, b: str):
    """How far apart two releases are (minor releases; the nearest trace speaks for an untraced release)."""
    try:
        va, vb = Version(results.release(a)), Version(results.release(b))
        return (abs((va.major * 100 + va.minor) - (vb.major * 100 + vb.minor)), version_key(a))
    except InvalidVersion:
        return (10**6, version_key(a))


def _case_ops(trace):
    return {name: {d: [tuple(p) for p in pairs] for d, pairs in by_dtype.items()}
            for name, by_dtype in trace["cases"].items()}
