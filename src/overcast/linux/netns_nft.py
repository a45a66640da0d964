"""nftables inside one router namespace: its batches (``KernelIO.ns_nft``)
and the listing of its tables named with ``NFT_TABLE_PREFIX``
(``Netns.nft``).

A listing is kept while the namespace's nftables generation stays (no
transaction since, by anyone: ``linux/nftgen.py``), so an observe lists
only the namespaces whose rules changed since the last one.  The
libnftables context and the generation socket are made inside the
namespace on first use and stay there.
"""

from __future__ import annotations

from typing import Any

from overcast.linux.nft import LIBRARY, Nftables, NftError
from overcast.linux.nftgen import LazyGeneration
from overcast.plan.names import NFT_TABLE_PREFIX
from overcast.plan.raw import KernelRefusal


class NamespaceNft:
    """The nftables of the namespace at ``path`` (its ``/run/netns`` file)."""

    def __init__(self, name: str, path: str) -> None:
        self._name = name
        self._path = path
        self._nft: Nftables | None = None
        self._gen = LazyGeneration(path)
        self._listed: tuple[int, tuple[dict[str, Any], ...]] | None = None  # (generation, rows)

    def close(self) -> None:
        if self._nft is not None:
            self._nft.close()
        self._gen.close()

    def batch(self, commands: list[dict[str, Any]]) -> None:
        """One JSON batch, atomic; a refusal names the namespace."""
        try:
            self._context().json_cmd({"nftables": commands})
        except NftError as exc:
            raise KernelRefusal(f"router namespace {self._name}: nftables: {exc}") from None

    def rows(self) -> tuple[dict[str, Any], ...]:
        """The objects of the tables named with the prefix, in ``list
        ruleset`` order; none when libnftables is missing (then ``batch``
        is refused, naming it)."""
        gen = self._gen.read()
        if gen is not None and self._listed is not None and self._listed[0] == gen:
            return self._listed[1]
        try:
            items = self._context().list_ruleset().get("nftables", [])
        except KernelRefusal:
            return ()
        except NftError as exc:
            raise KernelRefusal(f"router namespace {self._name}: nftables: {exc}") from None
        rows = tuple(item for item in items if _table_of(item).startswith(NFT_TABLE_PREFIX))
        if gen is not None and self._gen.read() == gen:
            self._listed = (gen, rows)
        return rows

    def forget(self, table: str) -> None:
        """List again next time if the kept listing has ``table``: its
        counters count on without a new generation."""
        if self._listed is not None and any(_table_of(r) == table for r in self._listed[1]):
            self._listed = None

    def _context(self) -> Nftables:
        if self._nft is None:
            try:
                self._nft = Nftables(netns=self._path)
            except (OSError, NftError) as exc:  # OSError: ctypes found no library
                raise KernelRefusal(f"router namespace {self._name}: nftables unavailable "
                                    f"({LIBRARY}): {exc}") from None
        return self._nft


def _table_of(item: dict[str, Any]) -> str:
    """The table a ``list ruleset`` item belongs to ("" for ``metainfo``)."""
    for kind, body in item.items():
        if kind != "metainfo" and isinstance(body, dict):
            return str(body.get("name" if kind == "table" else "table", ""))
    return ""
