"""(root) A thread that enters a network namespace comes back to its own
namespace, not the main thread's (review-2 found ``devices.entered_netns``
returning to ``/proc/self/ns/net``, the main thread's: a worker thread that
entered a namespace while the main thread was inside another came back into
the main thread's, and every socket it made afterwards lived there).

Namespaces are ``oc-r2-<pid>-<role>``, made and removed by this file only."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from overcast.linux.devices import entered_netns
from overcast.linux.nft import Nftables

from .conftest import namespaces

pytestmark = pytest.mark.root
PREFIX = f"oc-r2-{os.getpid() % 100000}"


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str]]:
    with namespaces(PREFIX) as make:
        yield make("a"), make("b")


def _own_namespace() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_a_worker_thread_comes_back_to_its_own_namespace(two_namespaces: tuple[str, str]) -> None:
    main_ns, worker_ns = two_namespaces
    started, main_is_inside = threading.Event(), threading.Event()
    found: dict[str, int] = {}

    def worker() -> None:
        found["home"] = _own_namespace()
        started.set()
        main_is_inside.wait(10)
        with entered_netns(worker_ns):
            found["inside"] = _own_namespace()
        found["after"] = _own_namespace()

    thread = threading.Thread(target=worker)
    thread.start()  # in this thread's namespace, before the main thread leaves it
    assert started.wait(10)
    with entered_netns(main_ns):
        main_is_inside.set()
        thread.join(10)
    assert not thread.is_alive()
    assert found["inside"] != found["home"]
    assert found["after"] == found["home"]


def test_a_worker_thread_making_an_nft_context_stays_in_its_own_namespace(
        two_namespaces: tuple[str, str]) -> None:
    main_ns, worker_ns = two_namespaces
    started, main_is_inside = threading.Event(), threading.Event()
    found: dict[str, int] = {}

    def worker() -> None:
        found["home"] = _own_namespace()
        started.set()
        main_is_inside.wait(10)
        with Nftables(netns=worker_ns) as nft:
            nft.list_ruleset()
        found["after"] = _own_namespace()

    thread = threading.Thread(target=worker)
    thread.start()
    assert started.wait(10)
    with entered_netns(main_ns):
        main_is_inside.set()
        thread.join(10)
    assert not thread.is_alive()
    assert found["after"] == found["home"]
