"""What ``scan TARGET`` names, and running it.

TARGET is one of
- ``package.module:function`` (or ``path/to/file.py:function``): called with the arguments that
  ``--inputs MODULE:FACTORY`` returns, else the module's ``example_inputs()``, else none at all (only if
  the function needs none). A factory returns a tuple (positional arguments), a dict (keyword
  arguments) or one value; it is given ``device=`` when it takes that parameter. An ``nn.Module``
  instance is called like a function.
- ``path/to/script.py``: run as ``__main__`` (``sys.argv`` = the script and the arguments after ``--``).
- a saved op list: a ``.json`` file (a ``scan --json`` output, a list of ops, or {op: count}) or a
  ``.txt``/``.ops`` file with one ``aten::op.overload [dtype] [count]`` per line (``#`` comments).

Anything wrong with the target (cannot be imported, raises, needs inputs it was not given) is a
``TargetError`` naming it; the CLI turns it into a message and exit status 2, writing nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import runpy
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils._pytree import tree_map

OP_LIST_SUFFIXES = (".json", ".txt", ".ops")
DEFAULT_FACTORY = "example_inputs"


class TargetError(Exception):
    """The target cannot be scanned; str() names it and says why."""


@dataclass(frozen=True)
class Target:
    spec: str  # as the user wrote it
    kind: str  # "callable", "script" or "ops"
    path: Path | None = None
    module: str | None = None
    attr: str | None = None


def parse(spec: str) -> Target:
    text = spec.strip()
    if not text:
        raise TargetError("TARGET is empty: give module:function, a script.py, or a saved op list")
    file_part, sep, attr = text.rpartition(":")
    if sep and file_part.endswith(".py") and attr.isidentifier():
        path = Path(file_part)
        if not path.is_file():
            raise TargetError(f"TARGET {spec}: no such file {path}")
        return Target(spec, "callable", path=path, attr=attr)
    path = Path(text)
    if path.suffix == ".py":
        if not path.is_file():
            raise TargetError(f"TARGET {spec}: no such script")
        return Target(spec, "script", path=path)
    if path.suffix in OP_LIST_SUFFIXES:
        if not path.is_file():
            raise TargetError(f"TARGET {spec}: no such op list")
        return Target(spec, "ops", path=path)
    module, sep, attr = text.partition(":")
    if not sep or not module or not all(p.isidentifier() for p in module.split(".")) or not all(
            p.isidentifier() for p in attr.split(".")):
        raise TargetError(f"TARGET {spec}: not module:function, nor a .py script, nor an op list "
                          f"({', '.join(OP_LIST_SUFFIXES)})")
    return Target(spec, "callable", module=module, attr=attr)


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _import_module(target: Target, name: str | None = None, path: Path | None = None):
    label = str(path) if path else name
    try:
        if path is not None:
            spec = importlib.util.spec_from_file_location(f"_opcompat_scan_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(name)
    except Exception as exc:  # whatever the user's import raises: it is their target's problem
        raise TargetError(f"TARGET {target.spec}: cannot import {label}: {_describe(exc)}") from None


def _lookup(target: Target, module, dotted: str, what: str):
    obj = module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"TARGET {target.spec}: {what} {dotted!r} not found in {module.__name__}")
        obj = getattr(obj, part)
    return obj


def _required_params(fn) -> list[str]:
    try:
        signature = inspect.signature(fn.forward if isinstance(fn, nn.Module) else fn)
    except (TypeError, ValueError):
        return []
    return [p.name for p in signature.parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _to_device(value, device: str):
    if isinstance(value, (torch.Tensor, nn.Module)):
        return value.to(device)
    return value


def prepare(target: Target, inputs: str | None = None, device: str = "cpu"):
    """(fn, args, kwargs) for a callable target, with the inputs built on ``device``."""
    module = _import_module(target, target.module, target.path)
    fn = _lookup(target, module, target.attr, "function")
    if not callable(fn):
        raise TargetError(f"TARGET {target.spec}: {target.attr} is a {type(fn).__name__}, not callable")
    factory, label = None, None
    if inputs:
        mod_name, sep, attr = inputs.partition(":")
        if not sep:
            raise TargetError(f"--inputs {inputs}: expected MODULE:FACTORY")
        factory_path = Path(mod_name) if mod_name.endswith(".py") else None
        factory_module = _import_module(target, None if factory_path else mod_name, factory_path)
        factory, label = _lookup(target, factory_module, attr, "input factory"), inputs
    elif hasattr(module, DEFAULT_FACTORY):
        factory, label = getattr(module, DEFAULT_FACTORY), f"{module.__name__}.{DEFAULT_FACTORY}"
    if factory is None:
        needed = _required_params(fn)
        if needed:
            raise TargetError(f"TARGET {target.spec} needs inputs it was not given (parameters: "
                              f"{', '.join(needed)}): pass --inputs MODULE:FACTORY, or define "
                              f"{DEFAULT_FACTORY}() in its module")
        return fn, (), {}
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    try:
        made = factory(device=device) if "device" in params else factory()
    except Exception as exc:
        raise TargetError(f"TARGET {target.spec}: the input factory {label} raised {_describe(exc)}") from None
    if isinstance(made, dict):
        args, kwargs = (), dict(made)
    elif isinstance(made, (tuple, list)):
        args, kwargs = tuple(made), {}
    else:
        args, kwargs = (made,), {}
    if "device" not in params and device != "cpu":
        args, kwargs = tree_map(lambda v: _to_device(v, device), (args, kwargs))
    return fn, args, kwargs


def runner(target: Target, inputs: str | None = None, device: str = "cpu", script_args=()):
    """A no-argument callable that runs the target once (inputs are built now, outside any tracer)."""
    if target.kind == "script":
        def run_script():
            saved = sys.argv[:]
            sys.argv = [str(target.path), *script_args]
            try:
                runpy.run_path(str(target.path), run_name="__main__")
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    raise TargetError(f"TARGET {target.spec}: the script exited with status {exc.code}") from None
            finally:
                sys.argv = saved
        return run_script
    fn, args, kwargs = prepare(target, inputs, device)
    return lambda: fn(*args, **kwargs)


def run_guarded(target: Target, run, device: str = "cpu", context=None):
    """Run ``run()`` with factories defaulting to ``device``; any exception becomes a TargetError."""
    hint = " (the meta device has no data: a target that reads values needs --on cpu)" if device == "meta" else ""
    try:
        default_device = torch.device(device) if hasattr(torch.device, "__enter__") else contextlib.nullcontext()
        with default_device, (context or contextlib.nullcontext()):  # torch.device is a context from 2.0
            run()
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(f"TARGET {target.spec} raised {_describe(exc)}{hint}") from None
