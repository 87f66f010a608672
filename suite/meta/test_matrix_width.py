"""No line of MATRIX.md is wider than matrix.render.common.WIDTH: the committed file, and one built from
results with absurdly long names and messages (the renderer wraps text and cuts table cells to fit)."""

from __future__ import annotations

import pytest

from matrix import results
from matrix.__main__ import main as matrix_main
from matrix.build import DEFAULT_OUT
from matrix.render.allops import PAGE_NAME
from matrix.render.common import WIDTH, table

pytestmark = pytest.mark.meta


def too_wide(text):
    return [(n, len(line)) for n, line in enumerate(text.splitlines(), 1) if len(line) > WIDTH]


@pytest.mark.parametrize("name", [DEFAULT_OUT.name, PAGE_NAME])
def test_no_line_of_the_committed_matrix_is_wider_than_the_limit(name):
    path = DEFAULT_OUT.with_name(name)
    if name == PAGE_NAME and not path.exists():
        pytest.skip(f"no {PAGE_NAME}: no prediction snapshots in this checkout")
    text = path.read_text(encoding="utf-8")
    assert text.strip(), f"{name} is empty"
    assert not too_wide(text), f"{name}: lines (number, width) over {WIDTH}: {too_wide(text)[:10]}"


def test_long_names_and_messages_are_wrapped_or_cut_to_the_limit(tmp_path, capsys):
    long_op = "aten::" + "very_long_overload_name_" * 8 + ".Tensor"
    machine = {"device": "cpu", "device_name": "A CPU whose marketing name goes on " * 6, "os": "Linux " * 20,
               "python": "3.11", "slug": "long"}
    cause = "value mismatch (" + "a regime with a long name, " * 10 + ")"
    verdict = {"case": "std_plus_mean", "correction": 1, "dtype": "float32", "device": "cpu", "equivalent": False,
               "causes": [cause], "failing_regimes": [], "counterexample": "", "device_notes": ["note " * 40]}
    data = results.make("measured", {"version": "2.13.0+cpu", "git": None, "cuda": None}, machine,
                        [{"op": long_op, "dtype": "float32", "status": "native", "message": "", "evidence": []}],
                        [{"case": "x" * 150, "dtype": "float32", "runs_on_device": False, "fallback_ops": [long_op],
                          "message": "m" * 300}], [verdict])
    results.write(data, tmp_path)
    out = tmp_path / "MATRIX.md"
    assert matrix_main(["build", "--results", str(tmp_path), "--out", str(out)]) == 0
    capsys.readouterr()
    text = out.read_text(encoding="utf-8")
    assert long_op.removeprefix("aten::")[:40] in text, "the op is still named"
    assert not too_wide(text), f"lines (number, width) over {WIDTH}: {too_wide(text)[:10]}"


def test_the_width_test_can_fail():
    wide = table([["x" * (WIDTH + 50), "y" * (WIDTH + 50)]], ["a", "b"])
    assert not too_wide(wide), "table() cuts cells to fit"
    assert too_wide("z" * (WIDTH + 1)) == [(1, WIDTH + 1)]
