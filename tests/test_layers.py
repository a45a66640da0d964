"""The shape of the import graph of src/overcast.

The layer rules are import-linter contracts in pyproject.toml (``[tool.importlinter]``,
run by ``lint-imports`` in scripts/test). Here: no import cycle between any two
modules, every top-level package is governed by a contract, and the one import the
graph cannot see (the CLI loading the lab by name) stays the only one.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import grimp  # comes with import-linter

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "overcast"


def _cycles(graph: grimp.ImportGraph) -> list[str]:
    """Each import cycle, as a shortest one through one of its imports (one per set of
    modules)."""
    found: dict[frozenset[str], str] = {}
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                found.setdefault(frozenset(back), " -> ".join((module, *back)))
    return sorted(found.values())


def test_the_cycle_finder_names_each_cycle() -> None:
    graph = grimp.ImportGraph()
    for edge in ["a b", "b c", "c a", "c d", "x y", "y x"]:
        importer, imported = edge.split()
        graph.add_import(importer=importer, imported=imported)
    assert _cycles(graph) == ["a -> b -> c -> a", "x -> y -> x"]


def test_no_import_cycles() -> None:
    """Imports inside functions and under TYPE_CHECKING count: an import moved out of
    sight still ties the two modules."""
    cycles = _cycles(grimp.build_graph("overcast", cache_dir=None))
    assert not cycles, "import cycles in src/overcast:\n" + "\n".join(cycles)


def test_every_package_is_governed_by_a_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    governed = {m for c in config["contracts"] for m in c["source_modules"]}
    packages = {f"overcast.{p.name}" for p in SRC.iterdir() if (p / "__init__.py").exists()}
    # the lab may import anything: it is the whole system in namespaces
    assert packages - governed == {"overcast.lab"}, f"no contract for {packages - governed}"


def test_only_the_cli_dispatch_names_the_lab() -> None:
    """The lab contract holds for import statements; the CLI reaches the lab by module
    name (importlib), and that must stay the only production reference to it."""
    naming = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(SRC / "lab"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value == "overcast.lab" or node.value.startswith("overcast.lab."):
                    naming.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value}")
    assert [n.split(":")[0] for n in naming] == ["cli/main.py"], naming
