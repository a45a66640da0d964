"""scripts/tempest's options, checked before anything is installed or started.

Standard library only: scripts/tempest runs ``python3 -m tests.tempest.options
"$@"`` first, with the machine's Python, so that a bad ``--regex`` is a one-line
error and exit status 2 in a second, not a traceback from ``tempest run``
after Keystone and Overcast came up.  ``runner`` parses the same options.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

DEFAULT_REGEX = r"^(tempest\.api\.network|neutron_tempest_plugin\.api)"
PROG = "scripts/tempest"


def _parser(full: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, add_help=full,
                                description="tempest's network API tests against Overcast "
                                            "(docs/tempest.md)")
    # tempest run hands the regex to stestr, which compiles it with Python's re
    p.add_argument("--regex", default=DEFAULT_REGEX, help="tests to run (default %(default)s)")
    if full:
        p.add_argument("--concurrency", type=int, default=2, help="tempest workers (default 2)")
        p.add_argument("--no-agent", action="store_true",
                       help="run no agent (by default, as root, one agent in a namespace of its "
                            "own realizes routers and is listed)")
        p.add_argument("--keep", action="store_true",
                       help="leave Keystone and Overcast up after the run (their PIDs printed)")
        p.add_argument("--list-failures", action="store_true",
                       help="and list the failed tests grouped by test class")
        p.add_argument("--results", type=Path, default=None,
                       help="results directory (default .tempest-results/<UTC time>)")
    return p


def bad_regex(pattern: str) -> str | None:
    """Why ``pattern`` is no regular expression (one line), or None."""
    try:
        re.compile(pattern)
    except re.error as err:
        return f"{PROG}: invalid --regex {pattern!r}: {err}"
    return None


def _checked(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    why = bad_regex(args.regex)
    if why is not None:
        p.exit(2, why + "\n")
    return args


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Every option of the runner (exit 2 on a bad one, as argparse does)."""
    p = _parser(full=True)
    return _checked(p, p.parse_args(argv))


def check(argv: list[str]) -> None:
    """Only ``--regex``, the rest left to the runner (``--help`` too)."""
    p = _parser(full=False)
    _checked(p, p.parse_known_args(argv)[0])


if __name__ == "__main__":
    check(sys.argv[1:])
