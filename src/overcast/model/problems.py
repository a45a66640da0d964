"""Validation results: every problem found, each with the path of the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["invalid", "conflict", "not_found", "in_use", "exhausted"]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # e.g. "subnet.allocation_pools[1].start"
    message: str
    kind: Kind = "invalid"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ModelError(Exception):
    """Raised with every problem of a rejected change."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems

    @property
    def kind(self) -> Kind:
        order: list[Kind] = ["not_found", "in_use", "exhausted", "conflict", "invalid"]
        kinds = {p.kind for p in self.problems}
        return next((k for k in order if k in kinds), "invalid")
