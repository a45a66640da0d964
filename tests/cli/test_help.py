"""Every ``overcast ...`` subcommand says what it does: a line in its parent's
``--help`` listing and a description in its own ``--help``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from overcast.cli.main import PASSTHROUGH, build_parser
from overcast.lab.cli import build_parser as build_lab_parser


def subcommands(parser: argparse.ArgumentParser,
                path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str | None, argparse.ArgumentParser]]:
    """(words, line in the parent's listing, parser) of every subcommand below ``parser``."""
    for action in parser._actions:  # argparse has no public walk of its tree
        if isinstance(action, argparse._SubParsersAction):
            lines = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                yield (*path, name), lines.get(name), child
                yield from subcommands(child, (*path, name))


def tree() -> list[tuple[tuple[str, ...], str | None, argparse.ArgumentParser]]:
    found = list(subcommands(build_parser(), ("overcast",)))
    found += subcommands(build_lab_parser(), ("overcast", "lab"))
    return found


def test_the_tree_is_walked() -> None:
    words = {" ".join(w) for w, _, _ in tree()}
    for expected in ("overcast network create", "overcast network qos rule create",
                     "overcast network agent set", "overcast subnet list", "overcast port unset",
                     "overcast security group rule create", "overcast router add subnet",
                     "overcast floating ip create", "overcast server", "overcast agent",
                     "overcast lab vm exec", "overcast lab host add"):
        assert expected in words
    assert len(words) > 70


@pytest.mark.parametrize("words", [" ".join(w) for w, _, _ in tree()])
def test_every_subcommand_has_a_one_line_help(words: str) -> None:
    (line, parser), = [(h, p) for w, h, p in tree() if " ".join(w) == words]
    assert line and line.strip(), f"`{words}` has no line in its parent's --help"
    assert "\n" not in line, f"`{words}`: its help is more than one line"
    if words.split()[1:] in ([name] for name in PASSTHROUGH):
        return  # its own parser lives in its module: see the test below
    assert parser.description, f"`{words} --help` says nothing of what it does"


@pytest.mark.parametrize("name", sorted(PASSTHROUGH))
def test_server_agent_and_lab_describe_themselves(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from overcast.cli.main import main

    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: overcast {name}")
    description = out.split("\n\n")[1].strip()
    assert description and not description.startswith(("positional", "options")), out
