"""Running probe children: a crash or a hang costs the item it happened on, and the run goes on.

A child (``python -m matrix.probe_child``) reads a job on stdin and answers one ``@@opcompat`` line per
item, an ``opcompat.records.Observation``. The runner restarts a child after the item that killed,
hung or stopped the last one. The MPS fallback variable is only ever set in a child's environment:
PyTorch reads it once, when it loads, so the parent's own setting must never leak into a pass.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from opcompat import records
from opcompat.records import Observation
from opcompat.vocab import FALLBACK_ENV

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "@@opcompat "  # a protocol line; anything else a library prints is ignored


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


def _observation(answer: dict, index) -> Observation:
    try:
        return records.from_json(Observation, answer, where=f"the child's answer for item {index}")
    except records.RecordError as exc:  # a child that speaks another protocol: this item is lost, not the run
        return Observation(outcome="crashed", message=str(exc))


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
        """One Observation per ProbeItem, in order; ``job``: {device, simulate, prediction} for every child."""
        results = [None] * len(items)
        pending = list(range(len(items)))
        while pending:
            answered, fate, why = self._child({**job, "items": [records.to_json(items[i]) for i in pending]}, env)
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
            results[pending[first]] = Observation(outcome=fate if fate in ("crashed", "timeout") else "crashed",
                                                  message=why)
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
                if not line.startswith(PREFIX):
                    continue
                record = json.loads(line[len(PREFIX):])
                if "index" in record:
                    index = record.pop("index")
                    answered[index] = _observation(record, index)
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
