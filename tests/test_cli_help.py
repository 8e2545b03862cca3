"""The command line as a newcomer meets it: every subcommand and argument says what it is for, and
-v works before or after the subcommand."""

from __future__ import annotations

import argparse
import logging

import pytest

from edgekit.cli import build_parser, main, subparsers


def test_every_subcommand_and_argument_has_a_one_line_help():
    missing = []
    for name, p, help_text in subparsers(build_parser()):
        if not help_text or "\n" in help_text:
            missing.append(f"subcommand {p.prog!r}")
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            what = "/".join(action.option_strings) or action.dest
            if not action.help or action.help == argparse.SUPPRESS or "\n" in action.help:
                missing.append(f"{p.prog} {what}")
    assert not missing, "no one-line help: " + "; ".join(missing)


@pytest.mark.parametrize("argv", [["-v", "doctor", "--json"], ["doctor", "-v", "--json"], ["doctor", "--json", "-v"]])
def test_verbose_before_or_after_the_subcommand(argv, capsys, monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # basicConfig only configures a bare root logger
    monkeypatch.setattr(root, "level", logging.WARNING)
    assert main(argv) == 0  # before: "unrecognized arguments: -v" (exit 2) after the subcommand
    assert root.level == logging.DEBUG


def test_verbose_after_a_nested_subcommand():
    args = build_parser().parse_args(["models", "list", "-v"])
    assert args.verbose is True
    assert build_parser().parse_args(["models", "list"]).verbose is False


@pytest.mark.parametrize("board,shown", [("Raspberry Pi 5 Model B Rev 1.0", "Raspberry Pi 5 Model B Rev 1.0"),
                                         (None, "none found")])
def test_doctor_prints_the_board_line(board, shown, capsys, monkeypatch):
    import edgekit.machine

    monkeypatch.setattr(edgekit.machine, "board_model", lambda: board)
    assert main(["doctor"]) == 0
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines()]
    assert any(ln.startswith("board: ") and shown in ln for ln in lines), lines
