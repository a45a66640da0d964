"""Property: replaying watch events from any revision reproduces every later state.

A random sequence of transactions (puts, single and range deletes, compares
that sometimes fail, failure branches) runs against a store; the full state is
recorded after every revision.  Then for every revision R, starting from the
snapshot at R and replaying a watch from R+1 must give exactly the recorded
snapshot at every later revision, metadata (create/mod revision, version)
included.
"""

from __future__ import annotations

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overcast.store import (
    Compare,
    Delete,
    Event,
    MemoryStore,
    Op,
    Put,
    SqliteStore,
    Store,
    StoreError,
)

KEYS = ["a", "b", "c/1", "c/2", "c/3", "d"]
State = dict[str, tuple[bytes, int, int, int]]  # key -> (value, create, mod, version)

keys = st.sampled_from(KEYS)


def _ops(changes: dict[str, bytes | None]) -> list[Op]:
    return [Put(k, v) if v is not None else Delete(k) for k, v in changes.items()]


values = st.one_of(st.binary(max_size=2), st.binary(max_size=2), st.none())
key_ops = st.dictionaries(keys, values, min_size=1, max_size=4).map(_ops)
range_deletes = st.sampled_from([Delete("c/", "c0"), Delete("a", "c/2"), Delete("b", "d")])
ops = st.one_of(key_ops, key_ops, key_ops, st.lists(range_deletes, min_size=1, max_size=2))
compares = st.lists(
    st.one_of(
        st.builds(
            Compare, keys, st.just("version"), st.sampled_from(["==", ">", "<"]), st.integers(0, 2)
        ),
        st.builds(
            Compare, keys, st.just("value"), st.sampled_from(["==", "!="]), st.binary(max_size=1)
        ),
        st.builds(
            Compare, st.just("c/"), st.just("mod"), st.just("<"), st.integers(0, 8), st.just("c0")
        ),
    ),
    max_size=2,
)
txns = st.lists(st.tuples(st.one_of(st.just([]), compares), ops, ops), min_size=12, max_size=40)


def snapshot(store: Store) -> State:
    return {
        kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version)
        for kv in store.range("").kvs
    }


def apply_event(state: State, e: Event) -> None:
    if e.type == "delete":
        state.pop(e.key, None)
        return
    old = state.get(e.key)
    if old is None:
        state[e.key] = (e.value, e.revision, e.revision, 1)
    else:
        state[e.key] = (e.value, old[1], e.revision, old[3] + 1)


def run(store: Store, program: list[tuple[list[Compare], list[Op], list[Op]]]) -> dict[int, State]:
    states: dict[int, State] = {0: {}}
    for cmp, success, failure in program:
        try:
            res = store.txn(cmp, success, failure)
        except StoreError:  # duplicate keys in a branch: refused, nothing written
            assert store.revision() == max(states)
            continue
        states[res.revision] = snapshot(store)
    return states


def check_replay(store: Store, states: dict[int, State]) -> None:
    final = store.revision()
    assert sorted(states) == list(range(final + 1))  # every revision recorded, none skipped
    for start in range(final + 1):
        state = dict(states[start])
        events: list[Event] = []
        w = store.watch("", start + 1)
        while len(events) == 0 or events[-1].revision < final:
            if start == final:
                break
            batch = w.next_batch(1)
            assert batch, f"watch from {start + 1} stalled at {events[-1:] or 'start'}"
            events.extend(batch)
        assert [e.revision for e in events] == sorted(e.revision for e in events)
        for i, e in enumerate(events):
            apply_event(state, e)
            if i + 1 == len(events) or events[i + 1].revision != e.revision:
                assert state == states[e.revision], f"replay from {start + 1} at {e.revision}"
        assert w.next_batch(0) == []
        w.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=txns)
def test_replay_from_every_revision(backend: str, program: list) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory(prefix="oc-prop-") as tmp:
        store = MemoryStore() if backend == "memory" else SqliteStore(tmp + "/store.db")
        try:
            check_replay(store, run(store, program))
        finally:
            store.close()
