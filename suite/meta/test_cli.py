"""``python -m matrix``: subcommands on argparse subparsers; predict keeps its own parser."""

from __future__ import annotations

import pytest

from matrix.__main__ import COMMANDS, build_parser, main

pytestmark = pytest.mark.meta


def test_every_command_has_a_subparser_with_its_function():
    parser = build_parser()
    for name in COMMANDS:
        args, _ = parser.parse_known_args([name, "RUN.json"] if name == "speed" else [name])
        assert args.command == name and callable(args.func)


def test_predict_gets_every_argument_after_its_name(capsys):
    assert main(["predict", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: python -m matrix predict" in out and "--torch" in out, "predict's own parser answered"
    assert main(["predict", "--torch", "0.0.1", "--no-download"]) == 1
    assert "predict: error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["build", "--no-such-option"], ["here", "--quick", "extra"]])
def test_bad_command_lines_exit_2_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage: python -m matrix" in capsys.readouterr().err
