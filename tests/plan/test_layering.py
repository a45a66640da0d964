"""Layer rules of STYLE.md, read from the source: plan imports only model,
itself and the kernel records; linux never imports the logical model or any
upper layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import overcast

SRC = Path(overcast.__file__).parent


def overcast_imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / package).glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.name] = {n for n in names if n.startswith("overcast")}
    return found


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("plan", ("overcast.model", "overcast.plan", "overcast.linux.records")),
        ("linux", ("overcast.linux",)),
    ],
)
def test_layer_imports(package: str, allowed: tuple[str, ...]) -> None:
    imports = overcast_imports(package)
    assert imports, f"no modules found in {package}"
    bad = {f: sorted(n for n in names if not n.startswith(allowed)) for f, names in imports.items()}
    assert {f: n for f, n in bad.items() if n} == {}
