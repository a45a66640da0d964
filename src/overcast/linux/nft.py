"""A minimal ctypes binding to libnftables' JSON API (libnftables.so.1).

``Nftables().json_cmd({"nftables": [...]})`` runs one JSON command batch and
returns the parsed JSON output ({} when the command prints nothing);
``list_ruleset()`` returns the ruleset as JSON.  Errors raise
:class:`NftError` with libnftables' own message.

The netlink socket of a context is opened when the context is made, so
``Nftables(netns="name")`` makes its context inside that namespace and keeps
working there from any thread.
"""

from __future__ import annotations

import ctypes
import json
import threading
from typing import Any

from pyroute2 import netns as _netns

LIBRARY = "libnftables.so.1"
NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_HANDLE = 1 << 3
NFT_CTX_OUTPUT_JSON = 1 << 4

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
_ns_lock = threading.Lock()


class NftError(Exception):
    pass


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
        if netns is None:
            return self._lib.nft_ctx_new(NFT_CTX_DEFAULT)  # type: ignore[no-any-return]
        with _ns_lock:
            _netns.pushns(netns)
            try:
                return self._lib.nft_ctx_new(NFT_CTX_DEFAULT)  # type: ignore[no-any-return]
            finally:
                _netns.popns()

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

    def json_cmd(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Run one JSON batch ({"nftables": [...]}); return the parsed output."""
        out = self.cmd(json.dumps(obj))
        return json.loads(out) if out.strip() else {}

    def list_ruleset(self) -> dict[str, Any]:
        return self.json_cmd({"nftables": [{"list": {"ruleset": None}}]})
