"""The agent's main loop: watch the store, keep the view, reconcile.

Watch events only update the view and mark it dirty.  A reconcile pass runs
when the view is dirty, when a local port waits for its device (polled fast
for a while, then slower), and every ``resync_interval`` seconds regardless
(that pass repairs drift made by hand).  A pass the kernel refused part of is
retried soon (0.2 s, doubling up to the resync interval) rather than left to
the next resync; so is a pass that held ports back without a refusal (the
first pass on a fresh host makes the firewall's chains before any port joins
a bridge): the next pass follows at once, then as after a refusal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from overcast.agent.reconciler import PassResult, Reconciler
from overcast.agent.view import ModelView
from overcast.model import keys
from overcast.store.base import CompactedError, Store, Watcher

log = logging.getLogger(__name__)

FAST_POLL = 0.02  # while a new port waits for its device
SLOW_POLL = 0.5  # while a port has waited longer than FAST_WINDOW
FAST_WINDOW = 10.0
IDLE_WAIT = 0.25  # longest single watch wait (also how often devices are listed)
RETRY_FIRST = 0.2  # first retry after a pass with kernel errors; doubles while they last
# a pass that held ports back (their firewall's chains were made in it) is
# followed at once by another; then as after errors
HELD_FIRST = 0.1

DeviceLister = Callable[[], frozenset[str]]
# Keys no agent reads from its watch: every host's counters (each agent writes
# its own every 2 s; watched, N agents would each receive all N hosts' writes).
UNWATCHED = (keys.FIREWALL_COUNTERS, keys.METERING_COUNTERS)


class AgentLoop:
    def __init__(self, store: Store, reconciler: Reconciler, resync_interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 list_devices: DeviceLister | None = None) -> None:
        """``list_devices`` (cheap: names of the workload devices present, and
        anything else whose change calls for a pass, such as the handles of
        Overcast's nft tables) lets the loop skip passes while nothing it
        watches has changed; without it, a waiting port means a full pass on
        every poll."""
        self.store = store
        self.list_devices = list_devices
        self.last_devices: frozenset[str] | None = None
        self.reconciler = reconciler
        self.view: ModelView = reconciler.view
        self.resync_interval = resync_interval
        self.clock = clock
        self.watcher: Watcher | None = None
        self.dirty = True
        self.next_resync = 0.0
        self.last: PassResult | None = None
        self.retry_at: float | None = None  # when to retry a pass the kernel refused
        self.retry_delay = 0.0
        self.held_delay = 0.0  # the same for passes that held ports back without a refusal
        self.stopping = threading.Event()

    def full_read(self) -> None:
        """Replace the view with a consistent snapshot and watch from just after it."""
        if self.watcher is not None:
            self.watcher.close()
        snapshot = self.store.range(keys.ROOT)
        self.view.load(snapshot.kvs, snapshot.revision)
        self.watcher = self.store.watch(keys.ROOT, snapshot.revision + 1, UNWATCHED)
        self.dirty = True
        log.info("full read: %d keys at revision %d", len(snapshot.kvs), snapshot.revision)

    def wait_time(self) -> float:
        if self.dirty:
            return 0.0
        now = self.clock()
        waiting = self.reconciler.waiting_since.values()
        timeout = max(0.0, min(self.next_resync - now, IDLE_WAIT))
        if self.retry_at is not None:
            timeout = max(0.0, min(timeout, self.retry_at - now))
        if any(now - since < FAST_WINDOW for since in waiting):
            return min(timeout, FAST_POLL)
        if waiting:
            return min(timeout, SLOW_POLL)
        return timeout

    def poll_events(self, timeout: float) -> None:
        assert self.watcher is not None
        try:
            events = self.watcher.next_batch(timeout)
        except CompactedError as exc:
            log.warning("watch history compacted (%s); full re-read", exc)
            self.full_read()
            return
        if events and self.view.apply(events):
            self.dirty = True

    def step(self) -> PassResult | None:
        """Wait for events (bounded), then reconcile if anything calls for it."""
        if self.watcher is None:
            self.full_read()
        self.poll_events(self.wait_time())
        now = self.clock()
        due = now >= self.next_resync
        retry = self.retry_at is not None and now >= self.retry_at
        devices = self.list_devices() if self.list_devices is not None else None
        if devices is None:
            devices_moved = bool(self.reconciler.waiting_since)
        else:
            devices_moved = devices != self.last_devices
        if not (self.dirty or due or devices_moved or retry):
            return None
        self.dirty = False
        self.last_devices = devices
        result = self.reconciler.run_pass()
        if self.last is None:  # the host as the agent found it, now as planned (or why not)
            log.info("first pass: %d change(s), %d refused, %d port(s) held",
                     len(result.changes), len(result.errors), len(result.held))
        self.last = result
        if due:
            self.next_resync = now + self.resync_interval
        self._schedule_retry(result, now)
        return result

    def _schedule_retry(self, result: PassResult, now: float) -> None:
        if result.errors:
            self.held_delay = 0.0
            self.retry_delay = min(self.retry_delay * 2 or RETRY_FIRST, self.resync_interval)
            self.retry_at = now + self.retry_delay
            log.warning("%d change(s) refused; retrying in %.1fs", len(result.errors),
                        self.retry_delay)
        elif result.held:  # at once, then backing off while they stay held
            self.retry_delay = 0.0
            self.retry_at = now + self.held_delay
            self.held_delay = min(self.held_delay * 2 or HELD_FIRST, self.resync_interval)
            log.info("%d port(s) held until what they need is in place; again in %.1fs",
                     len(result.held), self.retry_at - now)
        else:
            self.retry_at, self.retry_delay, self.held_delay = None, 0.0, 0.0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except Exception:
                log.exception("reconcile pass failed; retrying after a full re-read")
                self.stopping.wait(1.0)
                self._recover()

    def _recover(self) -> None:
        try:
            self.full_read()
        except Exception:  # noqa: BLE001 - keep trying; the loop logs each failure
            log.exception("full re-read failed")
