"""Entry point of the ``overcast`` command (filled in by the CLI module)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("overcast: not yet implemented", file=sys.stderr)
    return 2
