"""The layering of DESIGN.md, checked on every import statement of the package:
lower layers never import upper ones, and nothing in production imports the lab."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "overcast"

# layer -> the overcast layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "store": set(),
    "linux": set(),
    "plan": {"model", "linux.records"},
    "services": {"model", "plan"},
    "api": {"model", "store"},
    "agent": {"model", "store", "plan", "linux", "services"},
    "cli": {"api", "agent", "lab"},  # only to dispatch `overcast server|agent|lab`
    "lab": {"model", "store", "api", "agent", "plan", "linux", "cli"},
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return [n.removeprefix("overcast.") for n in names if n.startswith("overcast.")]


def _allowed(layer: str, target: str) -> bool:
    if target.split(".")[0] == layer:
        return True
    return any(target == a or target.startswith(a + ".") for a in ALLOWED[layer])


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    bad = []
    for path in sorted((SRC / layer).rglob("*.py")):
        for target in _imports(path):
            if not _allowed(layer, target):
                bad.append(f"{path.relative_to(SRC)} imports overcast.{target}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_every_layer_is_known() -> None:
    layers = {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert layers <= set(ALLOWED), f"unknown layers: {layers - set(ALLOWED)}"
