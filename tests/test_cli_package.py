"""The ``hwbench`` command's shape (issue 14): every subcommand dispatches through its own
``func`` (a new command without one would otherwise run nothing, or the wrong command), and
the package docstring names every command."""

from __future__ import annotations

import argparse

import pytest

import hwbench.cli as cli
from hwbench.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def commands_without_func(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommands whose parser sets no callable ``func`` default."""
    return [name for name, sub in _subparsers(parser).items()
            if not callable(sub.get_default("func"))]


def test_every_subcommand_sets_its_func():
    parser = build_parser()
    assert len(_subparsers(parser)) == 11
    assert commands_without_func(parser) == []


def test_a_command_added_without_func_is_caught():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action.add_parser("new-command")
    assert commands_without_func(parser) == ["new-command"]


def test_each_command_runs_its_own_module():
    parser = build_parser()
    for module in cli.COMMANDS:
        names = [name for name, sub in _subparsers(parser).items()
                 if sub.get_default("func") is module.run]
        assert len(names) == 1, (module.__name__, names)


@pytest.mark.parametrize("name", sorted(_subparsers(build_parser())))
def test_the_package_docstring_names_every_command(name):
    assert f"``{name}``" in cli.__doc__
