"""Kernels registered for MPS from Python in torch/backends/mps/__init__.py, read with ``ast``.

2.0 registers ``torch._refs.var_mean`` for ``var_mean.correction`` at import (under ``if is_built()``);
2.1-2.12 do it inside ``_init()``, which torch/__init__.py calls; 2.13 dropped the registrations. The
file is never imported: it is the macOS build's and would need torch._C.
"""

from __future__ import annotations

import ast

PACKAGE = ("torch", "backends", "mps")  # for resolving "from ..._refs import var_mean"


def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin, from every import in the file (module or function scope)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            parent = PACKAGE[: len(PACKAGE) - node.level + 1] if node.level else ()
            module = ".".join([*parent, *(node.module.split(".") if node.module else [])])
            for alias in node.names:
                out[alias.asname or alias.name] = f"{module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                out[alias.asname or alias.name.split(".")[0]] = alias.name
    return out


def _libraries(tree: ast.AST) -> dict[str, str]:
    """Variable -> namespace, for ``_lib = _Library("aten", "IMPL")``."""
    out = {}
    for node in ast.walk(tree):
        if (isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Call)
                and node.value.args and isinstance(node.value.args[0], ast.Constant)
                and isinstance(node.value.args[0].value, str)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value.args[0].value
    return out


def _dispatch_key(call: ast.Call) -> str | None:
    if len(call.args) >= 3 and isinstance(call.args[2], ast.Constant):
        return call.args[2].value
    for kw in call.keywords:
        if kw.arg == "dispatch_key" and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def parse(source: str, torch_init: str | None = None) -> list[dict]:
    """[{op, kernel, scope, guard, line, active, activation}] for every ``<lib>.impl(op, fn, "MPS")``.

    ``active``: whether the registration runs when torch is imported on a Mac: at module level, or in a
    function that this file or torch/__init__.py (``torch_init``) calls. ValueError if not Python.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"not valid Python ({exc.msg}, line {exc.lineno})") from None
    imports, libraries = _imports(tree), _libraries(tree)
    module_calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    found = []

    def visit(node, scope, guards):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name, guards)
                continue
            if isinstance(child, ast.If):
                test = ast.unparse(child.test)
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), scope, [*guards, test])
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), scope, [*guards, f"not ({test})"])
                continue
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr == "impl"
                    and child.args and isinstance(child.args[0], ast.Constant)
                    and _dispatch_key(child) == "MPS"):
                receiver = child.func.value.id if isinstance(child.func.value, ast.Name) else ""
                namespace = libraries.get(receiver, "aten")
                op = str(child.args[0].value)
                kernel = ast.unparse(child.args[1]) if len(child.args) > 1 else "?"
                found.append({"op": op if namespace == "aten" else f"{namespace}::{op}",
                              "kernel": imports.get(kernel, kernel), "call": ast.unparse(child),
                              "scope": scope, "guard": " and ".join(guards), "line": child.lineno})
            visit(child, scope, guards)

    visit(tree, "<module>", [])
    for reg in found:
        scope = reg["scope"]
        if scope == "<module>":
            imported = torch_init is not None and "import torch.backends.mps" in torch_init
            reg["active"], reg["activation"] = True, "at import of torch.backends.mps" + (
                " (torch/__init__.py imports it)" if imported else "")
        elif torch_init is not None and f"mps.{scope}()" in torch_init:
            reg["active"], reg["activation"] = True, f"in {scope}(), which torch/__init__.py calls"
        elif scope in module_calls:
            reg["active"], reg["activation"] = True, f"in {scope}(), called within the module"
        elif torch_init is None:
            reg["active"], reg["activation"] = True, f"in {scope}() (torch/__init__.py not available to confirm)"
        else:
            reg["active"], reg["activation"] = False, f"in {scope}(), which nothing calls"
    return found
