"""The README's table of extensions is the list ``/v2.0/extensions`` serves,
each with Neutron's name: a new alias without a row, or a row for an alias
no longer served, fails here."""

from __future__ import annotations

import re
from pathlib import Path

from overcast.api import meta

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \|")


def test_the_readme_lists_every_advertised_extension_with_its_name() -> None:
    rows = {m[1]: m[2].strip() for line in README.read_text().splitlines()
            if (m := ROW.match(line))}
    served = {alias: name for alias, (name, _, _) in meta.NEUTRON.items()}
    served |= {alias: "(Overcast's own)" for alias in meta.OVERCAST}
    assert rows == served
