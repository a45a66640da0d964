from __future__ import annotations

import uuid

from overcast.plan import names


def test_tap_name_is_neutron_style() -> None:
    assert names.tap_name("0123456789ab-cdef") == "tap0123456789a"


def test_names_fit_ifnamsiz_and_do_not_collide() -> None:
    ids = [str(uuid.UUID(int=i * 0x1000000000000000000000000 + 7)) for i in range(1, 200)]
    made = [f(i) for i in ids for f in (names.bridge_name, names.vxlan_name)]
    assert all(len(n) <= names.IFNAMSIZ for n in made)
    assert len(set(made)) == len(made)
    assert all(len(names.tap_name(i)) <= names.IFNAMSIZ for i in ids)


def test_mark_round_trips() -> None:
    net_id = str(uuid.uuid4())
    assert names.network_of_mark(names.network_mark(net_id)) == net_id
    assert names.network_of_mark("something else") is None


def test_ownership_needs_prefix_and_mark() -> None:
    mark = names.network_mark("x")
    assert names.is_owned(names.bridge_name("x"), mark)
    assert names.is_owned(names.vxlan_name("x"), mark)
    assert not names.is_owned(names.bridge_name("x"), "")  # no mark
    assert not names.is_owned(names.bridge_name("x"), None)
    assert not names.is_owned(names.bridge_name("x"), "someone:else")
    assert not names.is_owned("br0", mark)  # mark on a foreign name
    assert not names.is_owned(names.tap_name("x"), mark)  # taps are never ours to delete
