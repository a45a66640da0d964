"""A minimal ctypes binding to libnftables' JSON API (libnftables.so.1).

``Nftables().json_cmd({"nftables": [...]})`` runs one JSON command batch and
returns the parsed JSON output ({} when the command prints nothing);
``list_ruleset()`` returns the ruleset as JSON.  Errors raise
:class:`NftError` with libnftables' own message.

``tables()`` reads the tables, with their handles and comments, from the
text listing: libnftables before 1.0.7 (Debian 12 has 1.0.6) neither reads
a table's ``comment`` from JSON nor writes it into JSON (rules' comments it
does).  The listing is terse (``NFT_CTX_OUTPUT_TERSE``: sets without their
elements), so its cost does not grow with the elements (a 10,000-element
table's full text listing took ~190 ms, the terse one ~2 ms; ``list
tables``, JSON or text, ~60 ms: libnftables 1.0.6 fetches every set's
elements for it).

The netlink socket of a context is opened when the context is made, so
``Nftables(netns="name")`` makes its context inside that namespace and keeps
working there from any thread.
"""

from __future__ import annotations

import ctypes
import json
import re
import threading
from typing import Any, NamedTuple

from overcast.linux.devices import entered_netns

LIBRARY = "libnftables.so.1"
NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_HANDLE = 1 << 3
NFT_CTX_OUTPUT_JSON = 1 << 4
NFT_CTX_OUTPUT_TERSE = 1 << 11  # sets without their elements

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
_TABLE_LINE = re.compile(r"table (\S+) (\S+) \{(?: # handle (\d+))?$")
_COMMENT_LINE = re.compile(r'\tcomment "([^"]*)"')
_BLOCK_LINE = re.compile(r"\t\S.* \{(?: # handle \d+)?$")  # a set, map, chain ... of the table


class NftError(Exception):
    pass


class ListedTable(NamedTuple):
    """A table as the terse text listing gives it."""

    family: str
    name: str
    handle: int
    comment: str | None  # None: the table has none


FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _check_table_name(family: str, name: str) -> None:
    """Family and name go into a text command: only what nft itself accepts
    unquoted, so nothing in them can end the command or start another."""
    if family not in FAMILIES:
        raise NftError(f"table {family} {name}: family {family!r} is not one of {FAMILIES}")
    if not _TABLE_NAME.fullmatch(name):
        raise NftError(f"table {family} {name}: name {name!r} is not [A-Za-z_][A-Za-z0-9_.-]*")


def marked_tables(commands: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(family, name, comment) of the tables a batch adds or creates with a
    comment.  A table deleted and then marked again in the same batch is
    refused (NftError): the mark cannot be written through JSON on
    libnftables 1.0.6 (see the module doc); flush the table instead."""
    deleted: set[tuple[str, str]] = set()
    marked: list[tuple[str, str, str]] = []
    for command in commands:
        for op, objs in command.items():
            table = objs.get("table") if isinstance(objs, dict) else None
            if not isinstance(table, dict):
                continue
            key = (str(table.get("family")), str(table.get("name")))
            if op in ("add", "create") and table.get("comment"):
                _check_table_name(*key)
            if op == "delete":
                deleted.add(key)
            elif op in ("add", "create") and table.get("comment"):
                if key in deleted:
                    raise NftError(f"table {key[0]} {key[1]}: deleted and marked again in one"
                                   " batch (the mark is not written through JSON); flush it instead")
                if not re.fullmatch(r"[^\"\n]*", str(table["comment"])):
                    raise NftError(f"table {key[0]} {key[1]}: a comment with a quote or a newline")
                marked.append((*key, str(table["comment"])))
    return marked


def _library() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.CDLL(LIBRARY)
            _declare(lib)
            _lib = lib
        return _lib


def _declare(lib: ctypes.CDLL) -> None:
    ctx = ctypes.c_void_p
    lib.nft_ctx_new.restype = ctx
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.restype = None
    lib.nft_ctx_free.argtypes = [ctx]
    lib.nft_ctx_output_set_flags.restype = None
    lib.nft_ctx_output_set_flags.argtypes = [ctx, ctypes.c_uint]
    for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctx]
    for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = [ctx]
    lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
    lib.nft_run_cmd_from_buffer.argtypes = [ctx, ctypes.c_char_p]


class Nftables:
    """One libnftables context (JSON in, JSON out).  Not thread-safe: use one
    per thread, or guard it."""

    def __init__(self, netns: str | None = None) -> None:
        self._lib = _library()
        self._ctx = self._new_context(netns)
        if not self._ctx:
            raise NftError("nft_ctx_new failed")
        self._lib.nft_ctx_output_set_flags(self._ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE)
        self._lib.nft_ctx_buffer_output(self._ctx)
        self._lib.nft_ctx_buffer_error(self._ctx)

    def _new_context(self, netns: str | None) -> int | None:
        """The context's socket is made in ``netns``, by this thread alone
        (``entered_netns``: pyroute2's pushns keeps one stack of saved
        namespaces for the whole process)."""
        with entered_netns(netns):
            return self._lib.nft_ctx_new(NFT_CTX_DEFAULT)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._ctx:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None

    def __enter__(self) -> Nftables:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cmd(self, text: str) -> str:
        """Run a command (JSON text or nft syntax); return its raw output."""
        if not self._ctx:
            raise NftError("context is closed")
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
        out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
        err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
        if rc != 0:
            raise NftError(err.strip() or f"nft command failed with {rc}")
        return out

    def text_cmd(self, text: str, terse: bool = False, handles: bool = False) -> str:
        """Run a command with text output (``list ...`` prints nft syntax;
        ``terse``: sets without their elements; ``handles``: ``# handle
        <n>`` after each object's opening line)."""
        flags = (NFT_CTX_OUTPUT_TERSE if terse else 0) | (NFT_CTX_OUTPUT_HANDLE if handles else 0)
        self._lib.nft_ctx_output_set_flags(self._ctx, flags)
        try:
            return self.cmd(text)
        finally:
            self._lib.nft_ctx_output_set_flags(self._ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE)

    def table_comments(self) -> dict[tuple[str, str], str]:
        """(family, name) -> comment of every table that has one (``tables``)."""
        return {key: t.comment for key, t in self.tables().items() if t.comment is not None}

    def tables(self) -> dict[tuple[str, str], ListedTable]:
        """(family, name) -> every table, with its handle and comment (from
        the terse text listing, without set elements: see the module doc)."""
        found: dict[tuple[str, str], ListedTable] = {}
        table: tuple[str, str] | None = None
        for line in self.text_cmd("list ruleset", terse=True, handles=True).splitlines():
            head = _TABLE_LINE.fullmatch(line)
            if head:
                if head[3] is None:
                    raise NftError(f"table {head[1]} {head[2]} listed without its handle")
                table = (head[1], head[2])
                found[table] = ListedTable(head[1], head[2], int(head[3]), None)
                continue
            comment = _COMMENT_LINE.fullmatch(line)
            if comment and table is not None:
                found[table] = found[table]._replace(comment=comment[1])
            if not line.startswith("\t") or _BLOCK_LINE.fullmatch(line):
                table = None  # the comment is declared before the table's first block
        return found

    def json_cmd(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Run one JSON batch ({"nftables": [...]}); return the parsed output."""
        out = self.cmd(json.dumps(obj))
        return json.loads(out) if out.strip() else {}

    def list_ruleset(self) -> dict[str, Any]:
        return self.json_cmd({"nftables": [{"list": {"ruleset": None}}]})
