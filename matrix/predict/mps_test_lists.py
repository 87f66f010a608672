"""The dtype expectations in torch/testing/_internal/common_mps.py (>= 2.8), read with ``ast``.

Inside ``mps_ops_modifier`` each release keeps dicts {OpInfo name: [torch dtypes] or None (= all)}:
UNIMPLEMENTED_XFAILLIST, UNDEFINED_XFAILLIST, ON_MPS_XFAILLIST, MACOS_BEFORE_14_4_XFAILLIST, ...,
extended by ``X.update({...})`` under ``if MACOS_VERSION < 14.0:`` and with values such as
``[torch.int64] if MACOS_VERSION < 14.0 else []``. Sets of names say which ops take complex dtypes.
Every literal is kept with the condition it sits under; what a list means is decided in dtype_rules.
Since 2.9 every op also gets ``expectedFailure`` for ``[torch.double, torch.cdouble]`` in the loop.
"""

from __future__ import annotations

import ast

FUNCTION = "mps_ops_modifier"  # forward ops; the *_grad_modifier lists are about backward


def _dtype(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch":
        return node.attr
    return ast.unparse(node)


def _values(node: ast.AST, when: list[str]) -> list[dict]:
    """[{dtypes: [...] or None, when: "cond and ..." or ""}]; an IfExp yields one entry per branch."""
    if isinstance(node, ast.IfExp):
        test = ast.unparse(node.test)
        return _values(node.body, [*when, test]) + _values(node.orelse, [*when, f"not ({test})"])
    if isinstance(node, ast.Constant) and node.value is None:
        return [{"dtypes": None, "when": " and ".join(when)}]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [{"dtypes": [_dtype(e) for e in node.elts], "when": " and ".join(when)}]
    return [{"dtypes": None, "unparsed": ast.unparse(node), "when": " and ".join(when)}]


def _pick_function(tree: ast.AST) -> ast.FunctionDef | None:
    # 2.9+ define a second, empty mps_ops_modifier for machines without MPS: take the big one.
    candidates = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == FUNCTION]
    return max(candidates, key=lambda n: len(ast.dump(n)), default=None)


def parse(source: str) -> dict:
    """{"lists": {LIST: {key: [entry]}}, "sets": {SET: [keys]}, "all_ops_xfail": [dtypes]}."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"not valid Python ({exc.msg}, line {exc.lineno})") from None
    lists: dict[str, dict[str, list]] = {}
    sets: dict[str, list[str]] = {}
    all_ops: list[str] = []
    function = _pick_function(tree)
    if function is None:
        return {"lists": lists, "sets": sets, "all_ops_xfail": all_ops}

    def add_dict(name: str, node: ast.Dict, when: list[str]):
        target = lists.setdefault(name, {})
        for key, value in zip(node.keys, node.values):
            if key is None and isinstance(value, ast.Name):  # {**OTHER}
                for k, entries in lists.get(value.id, {}).items():
                    target.setdefault(k, []).extend(_with(entries, when))
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                target.setdefault(key.value, []).extend(_values(value, when))

    def statement(node: ast.stmt, when: list[str], loop_when: list[str] | None):
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            for stmt in node.body:
                statement(stmt, [*when, test], loop_when)
            for stmt in node.orelse:
                statement(stmt, [*when, f"not ({test})"], loop_when)
        elif isinstance(node, (ast.For, ast.While, ast.With)):
            for stmt in node.body:
                statement(stmt, when, when if isinstance(node, ast.For) else loop_when)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()]
            for name in names:
                if isinstance(node.value, ast.Dict):
                    lists.pop(name, None)
                    add_dict(name, node.value, when)
                elif isinstance(node.value, (ast.Set, ast.List, ast.Tuple)):
                    sets[name] = [e.value for e in node.value.elts
                                  if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if (isinstance(call.func, ast.Attribute) and call.func.attr == "update"
                    and isinstance(call.func.value, ast.Name) and call.args):
                name, arg = call.func.value.id, call.args[0]
                if isinstance(arg, ast.Dict):
                    add_dict(name, arg, when)
                elif isinstance(arg, ast.Name):
                    for k, entries in lists.get(arg.id, {}).items():
                        lists.setdefault(name, {}).setdefault(k, []).extend(_with(entries, when))
            elif loop_when is not None and when == loop_when:
                all_ops.extend(_unconditional_xfail(call))

    for stmt in function.body:
        statement(stmt, [], None)
    return {"lists": lists, "sets": sets, "all_ops_xfail": sorted(set(all_ops))}


def _with(entries: list[dict], when: list[str]) -> list[dict]:
    if not when:
        return [dict(e) for e in entries]
    extra = " and ".join(when)
    return [dict(e, when=f"{extra} and {e['when']}" if e["when"] else extra) for e in entries]


def _unconditional_xfail(call: ast.Call) -> list[str]:
    """dtypes of ``addDecorator(op, DecorateInfo(unittest.expectedFailure, dtypes=[...]))`` hit by every op."""
    out = []
    for node in ast.walk(call):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "DecorateInfo"
                and node.args and "expectedFailure" in ast.unparse(node.args[0])):
            for kw in node.keywords:
                if kw.arg == "dtypes" and isinstance(kw.value, (ast.List, ast.Tuple)):
                    out.extend(_dtype(e) for e in kw.value.elts)
    return out
