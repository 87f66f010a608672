"""Device probe: does each traced op overload, and each case, run on a device, and how?

For every op overload the tracer finds (``opcompat.trace.trace_all`` at float32 and float16) and every
probed dtype, the traced call is replayed in a child process (matrix.probe_child) on the device and on
the CPU, and gets one status:

- ``native``: ran on the device, no CPU fallback, same result as the CPU (loose, per-dtype tolerance);
- ``fallback``: ran through PyTorch's CPU fallback (MPS only);
- ``not_implemented``: the device has no kernel and no fallback ran;
- ``wrong_result``: ran, but differs from the CPU;
- ``unsupported_dtype``: the device refuses the dtype (MPS has no float64; a CPU kernel without Half);
- ``error``: anything else raised (the message is kept);
- ``crashed`` / ``timeout``: the child died or hung on this item; it is recorded and the run goes on.

Each case runs too: does ``case.fn`` run on the device with no fallback, and which ops fell back.

MPS: PyTorch reads ``PYTORCH_ENABLE_MPS_FALLBACK`` once when it loads. Without it, an op with no MPS
kernel raises NotImplementedError; with it, the op runs on the CPU after a warning that is printed once
per process. So the variable is only ever set in a child's environment, never here; mode ``both``
first probes without it (native vs not implemented), then re-probes the not-implemented items with it
set (fallback vs not implemented), and a child stops after the first fallback warning it sees so that
each fallback is seen by a fresh process. CUDA and CPU have no fallback: their items are batched into
few children, restarted after a crash or hang so that one bad item costs only itself.

``simulate=True`` probes the simulated MPS backend (matrix.simulated_mps) with the same children and
the same parsing; its results say so and are never published.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from packaging.version import Version

import cases
from matrix.predict import predict
from matrix.simulated_mps import DEVICE_NAME as SIMULATED_DEVICE_NAME
from matrix.simulated_mps import prediction_table
from opcompat.trace import trace_all

ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("float32", "float16", "bfloat16", "float64")
TRACE_DTYPES = ("float32", "float16")  # float16 reaches upcasts (_to_copy) that float32 does not
STATUSES = ("native", "fallback", "not_implemented", "wrong_result", "unsupported_dtype", "error", "crashed",
            "timeout")
FALLBACK_ENV = "PYTORCH_ENABLE_MPS_FALLBACK"
MPS_FALLBACK_MODES = ("both", "on", "off")

# What the backends say. The MPS texts are those of aten/src/ATen/mps/MPSFallback.mm (1.12-1.13 wrote
# "not current implemented"); dtype refusals come from MPS (no float64; bfloat16 before macOS 14) and
# from CPU/CUDA kernels dispatched without a dtype ("... not implemented for 'Half'").
FALLBACK_WARNING = re.compile(r"The operator '([^']+)' is not currently supported on the MPS backend and will fall "
                              r"back to run on the CPU")
MPS_NOT_IMPLEMENTED = re.compile(r"The operator '([^']+)' is not current(?:ly)? implemented for the MPS device")
NO_KERNEL = re.compile(r"Could not run '([^']+)' with arguments from the '(\w+)' backend")
UNSUPPORTED_DTYPE = re.compile(
    r"doesn't support float64|does not have support for that dtype|BFloat16 is (?:only|not) supported|"
    r"not implemented for '(?:Half|BFloat16|Double|Float)'|"
    r"MPS does not support (?:float64|double|bfloat16|float16|half)",
    re.IGNORECASE)


def op_name(printed: str) -> str:
    """c10 prints 'aten::sqrt' for the default overload; rows say 'aten::sqrt.default'."""
    return printed if "." in printed.split("::")[-1] else printed + ".default"


def fallback_op(seen: dict):
    """The op named by a CPU-fallback warning the item raised, or None."""
    for text in seen.get("warnings", ()):
        m = FALLBACK_WARNING.search(text)
        if m:
            return op_name(m.group(1))
    return None


def classify(seen: dict):
    """(status, message, op named by the backend or None) for one child observation."""
    outcome = seen.get("outcome")
    if outcome in ("crashed", "timeout"):
        return outcome, seen.get("message", ""), None
    fell_back = fallback_op(seen)
    if outcome == "raised":
        text = f"{seen.get('error_type', 'Exception')}: {seen.get('message', '')}"
        m = MPS_NOT_IMPLEMENTED.search(text)
        if m:
            return "not_implemented", text, op_name(m.group(1))
        if UNSUPPORTED_DTYPE.search(text):
            return "unsupported_dtype", text, None
        m = NO_KERNEL.search(text)
        if m and seen.get("error_type") == "NotImplementedError":
            return "not_implemented", text, op_name(m.group(1))
        return "error", text, fell_back
    if seen.get("mismatch"):
        prefix = f"fell back to the CPU ({fell_back}) and " if fell_back else ""
        return "wrong_result", prefix + "differs from the CPU: " + seen["mismatch"], fell_back
    if fell_back:
        warning = next(w for w in seen["warnings"] if FALLBACK_WARNING.search(w))
        return "fallback", warning, fell_back
    return "native", "", None


# -- what to probe ---------------------------------------------------------------------------------
def trace_cases() -> dict:
    """{dtype: trace_all(every registered case, dtype)} at TRACE_DTYPES."""
    registered = cases.of_family("std_mean")  # the tracer calls std_mean cases only
    return {d: trace_all(registered, d) for d in TRACE_DTYPES}


def traced(traces=None):
    """(op calls, {case: {trace dtype: [(op, dtype it ran at)]}}) from the tracer at TRACE_DTYPES.

    The op calls are the matrix's op rows: each op keeps the first call seen, float32 first.
    ``traces`` (tests): {dtype: trace_all(dtype)}.
    """
    if traces is None:
        traces = trace_cases()
    calls, case_ops = {}, {}
    for dtype in TRACE_DTYPES:
        for name, found in traces.get(dtype, {}).items():
            for call in found:
                calls.setdefault(call.op, call)
            if name.startswith("case:"):
                reached = case_ops.setdefault(name[len("case:"):], {}).setdefault(dtype, [])
                reached.extend((c.op, _call_dtype(c) or dtype) for c in found)
    return list(calls.values()), case_ops


def _call_dtype(call):
    for value in (*call.args, *(v for _, v in call.kwargs)):
        if isinstance(value, dict) and "tensor" in value:
            return value["dtype"]
    return None


def ops_at(by_trace_dtype: dict, dtype: str) -> list:
    """The (op, dtype) pairs a case reaches at ``dtype``: half dtypes follow the float16 trace, the rest the
    float32 one; an op at the trace's dtype moves to ``dtype``, one the case upcast stays where it was."""
    source = "float16" if dtype in ("float16", "bfloat16") and "float16" in by_trace_dtype else "float32"
    found = by_trace_dtype.get(source) or next(iter(by_trace_dtype.values()), [])
    return list(dict.fromkeys((op, dtype if d == source else d) for op, d in found))


def _jsonable(value):
    return json.loads(json.dumps(value))


def op_item(call, dtype, seed):
    return {"kind": "op", "op": call.op, "args": _jsonable(call.args), "kwargs": _jsonable(call.kwargs),
            "dtype": dtype, "seed": seed}


def case_item(case, dtype, seed):
    return {"kind": "case", "case": case, "dtype": dtype, "seed": seed}


# -- running children -------------------------------------------------------------------------------
def child_env(fallback, base=None) -> dict:
    """The child's environment: the fallback variable set only when asked, whatever the caller has."""
    env = dict(os.environ if base is None else base)
    env.pop(FALLBACK_ENV, None)
    if fallback:
        env[FALLBACK_ENV] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _signal_name(rc):
    try:
        return f"killed by {signal.Signals(-rc).name}"
    except (ValueError, AttributeError):
        return f"exit status {rc}"


@dataclass
class Runner:
    """Runs items in children; a crash or hang costs the item it happened on, the rest go on.

    ``child_argv``: the child command (tests swap in a misbehaving one). ``item_timeout``: seconds an
    item may take; ``startup_timeout``: extra seconds for the first answer (importing torch, device init).
    """

    child_argv: list = field(default_factory=lambda: [sys.executable, "-m", "matrix.probe_child"])
    item_timeout: float = 120.0
    startup_timeout: float = 180.0
    children_started: int = 0

    def run(self, job: dict, items: list, env: dict) -> list:
        """One observation per item, in order."""
        results = [None] * len(items)
        pending = list(range(len(items)))
        while pending:
            answered, fate, why = self._child({**job, "items": [items[i] for i in pending]}, env)
            for local, seen in answered.items():
                results[pending[local]] = seen
            missing = [k for k in range(len(pending)) if k not in answered]
            if not missing:
                break
            first = missing[0]
            if fate == "stopped" and answered:
                pending = pending[first:]
                continue
            # The child died, hung, or quit early on this item: record it and go on after it.
            results[pending[first]] = {"outcome": fate if fate in ("crashed", "timeout") else "crashed",
                                       "message": why, "warnings": []}
            pending = pending[first + 1:]
        return results

    def _child(self, job, env):
        self.children_started += 1
        with tempfile.TemporaryFile(mode="w+") as stderr:
            proc = subprocess.Popen(self.child_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                    env=env, cwd=str(ROOT), text=True)
            lines = queue.Queue()
            pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
            pump.start()
            try:
                proc.stdin.write(json.dumps(job))
                proc.stdin.close()
            except BrokenPipeError:
                pass
            answered, fate, why = {}, None, ""
            timeout = self.startup_timeout + self.item_timeout
            while fate is None:
                try:
                    line = lines.get(timeout=timeout)
                except queue.Empty:
                    proc.kill()
                    proc.wait()
                    fate, why = "timeout", f"no answer within {timeout:g} s; the child was killed"
                    break
                if line is None:  # stdout closed: the child is gone
                    rc = proc.wait()
                    stderr.seek(0)
                    tail = " ".join(stderr.read()[-600:].split())
                    fate = "crashed"
                    why = f"the child exited ({_signal_name(rc)}) before answering" + (f": {tail}" if tail else "")
                    break
                if not line.startswith("@@opcompat "):
                    continue
                record = json.loads(line[len("@@opcompat "):])
                if "index" in record:
                    answered[record.pop("index")] = record
                    timeout = self.item_timeout
                elif "stop" in record:
                    fate, why = "stopped", record["stop"]
                elif "done" in record:
                    fate = "done"
            if proc.poll() is None:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            pump.join(timeout=10)  # the pipe reaches its end once the child is gone
            if not pump.is_alive():
                proc.stdout.close()
        return answered, fate, why


def _pump(stream, lines):
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


# -- the probe ---------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    device: str
    simulated: bool
    ops: list  # [{op, dtype, status, message, evidence}]
    cases: list  # [{case, dtype, runs_on_device, fallback_ops, message}]
    children: int = 0


def _short(text, limit=300):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def probe(device: str, *, dtypes=DTYPES, simulate=False, prediction=None, mps_fallback="both", runner=None,
          traces=None, case_names=None) -> ProbeResult:
    """Probe ``device`` ("cpu", "cuda", "cuda:1", "mps"; "mps" with ``simulate`` needs no Mac).

    - ``dtypes``: probed dtypes (default: all four; the device's refusals are statuses, not skips).
    - ``prediction``: for ``simulate``, {op: {status, dtype_status}} the simulated backend applies
      (default: matrix.predict for the installed torch).
    - ``mps_fallback``: "both" (default), "on" (only with the variable) or "off" (only without).
    - ``runner``: a Runner (timeouts, or a substitute child for tests); ``traces``: see ``traced``.
    - ``case_names``: cases to run (default: every traced case).
    """
    if mps_fallback not in MPS_FALLBACK_MODES:
        raise ValueError(f"mps_fallback={mps_fallback!r}: choose from {', '.join(MPS_FALLBACK_MODES)}")
    is_mps = simulate or device.startswith("mps")
    if simulate and not device.startswith("mps"):
        raise ValueError(f"simulate=True simulates MPS; device={device!r} is not mps")
    runner = runner or Runner()
    calls, case_ops = traced(traces)
    names = list(case_ops) if case_names is None else [n for n in case_names if n in case_ops]
    items = [op_item(c, d, seed=i) for i, (c, d) in enumerate((c, d) for c in calls for d in dtypes)]
    items += [case_item(n, d, seed=0) for n in names for d in dtypes]
    job = {"device": "mps" if simulate else device, "simulate": simulate}
    if simulate:
        job["prediction"] = prediction if prediction is not None else installed_prediction([c.op for c in calls])

    def pass_with(fallback, subset):
        return runner.run(job, [items[i] for i in subset], child_env(fallback))

    everything = list(range(len(items)))
    first_fallback = is_mps and mps_fallback == "on"
    first = dict(zip(everything, pass_with(first_fallback, everything)))
    second = {}
    if is_mps and mps_fallback == "both":
        again = [i for i in everything if classify(first[i])[0] == "not_implemented"]
        if again:
            second = dict(zip(again, pass_with(True, again)))
    label = {False: f"without {FALLBACK_ENV}", True: f"with {FALLBACK_ENV}=1"}
    if not is_mps:
        label = {False: f"on {device}", True: f"on {device}"}

    ops, op_status = [], {}
    for i, item in enumerate(items):
        if item["kind"] != "op":
            continue
        status, message, evidence = _op_status(first[i], second.get(i), label, first_fallback)
        op_status[(item["op"], item["dtype"])] = status
        ops.append({"op": item["op"], "dtype": item["dtype"], "status": status, "message": _short(message),
                    "evidence": evidence})
    found_cases = []
    for i, item in enumerate(items):
        if item["kind"] == "case":
            found_cases.append(_case_row(item, first[i], second.get(i), op_status))
    return ProbeResult("mps" if simulate else device, simulate, ops, found_cases, runner.children_started)


def _evidence(label, seen):
    status, message, _ = classify(seen)
    head = f"{label}: " if label else ""
    return f"{head}{status}" + (f" ({_short(message, 200)})" if message else "")


def _op_status(first, second, label, first_fallback):
    status, message, _ = classify(first)
    evidence = [_evidence(label[first_fallback], first)]
    if second is None:
        return status, message, evidence
    evidence.append(_evidence(label[True], second))
    again, again_message, _ = classify(second)
    if again == "native":  # ran once the variable was set: the CPU fallback ran (its warning already spent)
        return "fallback", message, evidence
    if again in ("fallback", "wrong_result", "error", "crashed", "timeout"):
        return again, again_message, evidence
    return status, message, evidence


def _case_row(item, first, second, op_status):
    status, message, named = classify(first)
    runs = status == "native"
    message = "" if runs else f"{status}: {message}"
    if second is not None:
        again, again_message, again_named = classify(second)
        named = named or again_named
        message = (f"runs only with {FALLBACK_ENV}=1 (CPU fallback)" if again in ("native", "fallback")
                   else f"{again}: {again_message}")
    # The ops the case reached on the device, each at the dtype it ran at (an upcast runs float32 ops).
    reached = [tuple(r) for r in (second or first).get("ops_reached", ())]
    fell_back = sorted({o for o, d in reached if op_status.get((o, d)) in ("fallback", "not_implemented")}
                       | ({named} if named else set()))
    return {"case": item["case"], "dtype": item["dtype"], "runs_on_device": runs, "fallback_ops": fell_back,
            "message": _short(message)}


# -- predictions and machine descriptions -------------------------------------------------------------------
def installed_torch_version() -> str:
    """The installed torch's release, without the local build tag ("2.13.0+cpu" -> "2.13.0")."""
    return Version(torch.__version__).base_version


def installed_prediction(ops) -> dict:
    """What matrix.predict says the installed torch's macOS build does with ``ops`` (simulated MPS)."""
    return prediction_table(predict(installed_torch_version(), list(ops), download=False))


def predicted_rows(predictions: dict, case_ops: dict, dtypes=DTYPES):
    """A prediction in probe terms: op rows, and for each case whether every op it reaches is native.

    float64 is refused by the MPS framework whatever the dispatch table says; it is recorded so.
    """
    ops, status = [], {}
    for op, p in predictions.items():
        data = p.to_json() if hasattr(p, "to_json") else dict(p)
        for dtype in dtypes:
            s = (data.get("dtype_status") or {}).get(dtype) or data.get("status", "unknown_op")
            evidence = list(data.get("evidence") or ())
            if dtype == "float64":
                s = "unsupported_dtype"
                evidence = ["the MPS framework has no float64: moving a float64 tensor to mps raises TypeError"]
            status[(op, dtype)] = s
            ops.append({"op": op, "dtype": dtype, "status": s, "message": "", "evidence": evidence})
    cases = []
    for name, by_trace_dtype in case_ops.items():
        for dtype in dtypes:
            cases.append(_predicted_case(name, dtype, ops_at(by_trace_dtype, dtype), status))
    return ops, cases


def _predicted_case(name, dtype, reached, status):
    row = {"case": name, "dtype": dtype, "runs_on_device": False, "fallback_ops": [], "message": ""}
    if dtype == "float64":
        return {**row, "message": "unsupported_dtype: MPS has no float64"}
    found = {}
    for op, at in reached:
        found.setdefault(status.get((op, at), "unknown"), []).append(op)
    row["fallback_ops"] = sorted(set(found.get("fallback", [])))
    problems = [f"{s}: {', '.join(sorted(set(found[s])))}" for s in ("unsupported_dtype", "unknown_op", "unknown")
                if s in found]
    row["message"] = "; ".join(problems)
    row["runs_on_device"] = not row["fallback_ops"] and not problems
    return row


def cpu_model() -> str:
    system = platform.system()
    try:
        if system == "Linux":
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
        if system == "Darwin":
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def slugify(text: str) -> str:
    """'Linux-x86_64-Intel(R) Xeon(R) Processor' -> 'linux-x86-64-intel-xeon-processor'."""
    text = re.sub(r"\((?:r|tm)\)", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def machine_info(device: str, simulated: bool = False) -> dict:
    """device, device_name, os, python and a hostname-free slug naming this kind of machine."""

    kind = device.split(":")[0]
    system, arch = platform.system(), platform.machine()
    os_name = f"{system} {platform.release()} ({arch})"
    if kind == "cuda":
        name = torch.cuda.get_device_name(torch.device(device))
    elif kind == "mps" and simulated:
        name = SIMULATED_DEVICE_NAME
    elif kind == "mps":
        name = f"Apple MPS, {cpu_model()}"
    else:
        name = cpu_model()
    if system == "Darwin":
        os_name = f"macOS {platform.mac_ver()[0]} ({arch})"
    short_os = f"macos{platform.mac_ver()[0].split('.')[0]}" if system == "Darwin" else system
    slug = slugify(f"{short_os}-{arch}-{'simulated' if simulated else name}")
    return {"device": kind, "device_name": name, "os": os_name, "python": platform.python_version(), "slug": slug}


def torch_info() -> dict:

    return {"version": torch.__version__, "git": getattr(torch.version, "git_version", None),
            "cuda": torch.version.cuda}


def opcompat_info() -> dict:
    """The harness that produced a result: its git commit, and whether the tree had local changes."""
    def git(*args):
        try:
            done = subprocess.run(["git", *args], cwd=str(ROOT), capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    # Result files and MATRIX.md are outputs, not harness: writing one row must not mark the next one dirty.
    status = git("status", "--porcelain", "--untracked-files=no", "--", "cases", "suite", "matrix",
                 ":(exclude)matrix/results", ":(exclude)matrix/MATRIX.md") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
