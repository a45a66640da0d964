"""The batched rtnetlink writer against the real kernel, in fresh namespaces:
FDB entries and attachments land as ``bridge``/``ip`` would make them, each
refused request is reported alone, lost answers are reported, and
NetlinkKernel applies large batches and reports a refused change alone."""

from __future__ import annotations

import errno
import os
import subprocess
from typing import Any

import pytest

from overcast.linux.devices import entered_netns
from overcast.linux.netlink import NetlinkKernel
from overcast.linux.rtnl_write import Refusal, Request, RtnlWriter, fdb_request, link_set_request
from overcast.plan.names import tap_name
from overcast.plan.state import Change, KernelState
from overcast.plan.subsystems.fdb import FdbEntry
from overcast.plan.subsystems.links import Attachment, Bridge, Vxlan

from .conftest import RUN, MakeNs, ip_json, link
from .test_netlink_kernel import P1, P2, add_taps, converge

pytestmark = pytest.mark.root

VX = ("type", "vxlan", "id", "10", "local", "198.18.0.1", "dstport", "4789", "nolearning")
MAC2, MAC3, BUM = "fa:16:3e:00:00:02", "fa:16:3e:00:00:03", "00:00:00:00:00:00"
H2, H3 = "198.18.0.2", "198.18.0.3"


def ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True)


def index(ns: str, name: str) -> int:
    return int(link(ns, name)["ifindex"])


def fdb(ns: str, dev: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(mac, dst) -> the entry as ``bridge -j fdb show`` prints it."""
    rows = ip_json(ns, "fdb", "show", "dev", dev, tool="bridge")
    return {(r["mac"], r["dst"]): r for r in rows if "dst" in r}


def send(ns: str, requests: list[Request], **writer: Any) -> list[Refusal | None]:
    with entered_netns(ns):
        w = RtnlWriter(**writer)
    try:
        return w.send(requests)
    finally:
        w.close()


def test_fdb_entries_are_appended_and_deleted_as_bridge_fdb_does(make_ns: MakeNs) -> None:
    ns = make_ns("w1")
    ip(ns, "link", "add", "oc-vx0", *VX)
    ip(ns, "link", "add", "oc-vx1", *VX[:3], "11", *VX[4:])
    for mac, dst in ((BUM, H2), (MAC2, H2)):  # the reference, made by iproute2
        subprocess.run(["bridge", "-n", ns, "fdb", "append", mac, "dev", "oc-vx1", "dst", dst], check=True)
    vx0 = index(ns, "oc-vx0")
    wanted = [(BUM, H2), (BUM, H3), (MAC2, H2), (MAC3, H3)]
    adds = [fdb_request("append", vx0, mac, dst) for mac, dst in wanted]
    assert send(ns, adds) == [None] * 4
    assert send(ns, adds) == [None] * 4  # appending what is there changes nothing
    entries = fdb(ns, "oc-vx0")
    assert set(entries) == set(wanted)
    reference = fdb(ns, "oc-vx1")
    for key in ((BUM, H2), (MAC2, H2)):
        assert {k: v for k, v in entries[key].items() if k != "ifname"} == \
               {k: v for k, v in reference[key].items() if k != "ifname"}
    dels = [fdb_request("del", vx0, BUM, H3), fdb_request("del", vx0, MAC3, H3),
            fdb_request("del", vx0, MAC3, H3)]
    answers = send(ns, dels)
    assert answers[:2] == [None, None]
    assert answers[2] is not None and answers[2].code == errno.ENOENT  # already gone
    assert set(fdb(ns, "oc-vx0")) == {(BUM, H2), (MAC2, H2)}


def test_attachments_set_master_mtu_and_up_and_detach(make_ns: MakeNs) -> None:
    ns = make_ns("w2")
    ip(ns, "link", "add", "oc-br0", "type", "bridge")
    for i in (0, 1):
        ip(ns, "link", "add", f"oc-t{i}", "type", "veth", "peer", "name", f"oc-p{i}")
    br, t0, t1 = index(ns, "oc-br0"), index(ns, "oc-t0"), index(ns, "oc-t1")
    answers = send(ns, [link_set_request(t0, master=br, mtu=1400, up=True),
                        link_set_request(t1, master=br, up=False)])
    assert answers == [None, None]
    first, second = link(ns, "oc-t0"), link(ns, "oc-t1")
    assert (first["master"], first["mtu"], "UP" in first["flags"]) == ("oc-br0", 1400, True)
    assert (second["master"], second["mtu"], "UP" in second["flags"]) == ("oc-br0", 1500, False)
    assert send(ns, [link_set_request(t0, master=0)]) == [None]
    assert "master" not in link(ns, "oc-t0") and "UP" in link(ns, "oc-t0")["flags"]


def test_a_request_on_a_vanished_device_is_the_only_one_refused(make_ns: MakeNs) -> None:
    ns = make_ns("w3")
    ip(ns, "link", "add", "oc-vx0", *VX)
    ip(ns, "link", "add", "oc-vx1", *VX[:3], "11", *VX[4:])
    ip(ns, "link", "add", "oc-br0", "type", "bridge")
    ip(ns, "link", "add", "oc-t0", "type", "veth", "peer", "name", "oc-p0")
    vx0, vx1, br, t0 = (index(ns, n) for n in ("oc-vx0", "oc-vx1", "oc-br0", "oc-t0"))
    ip(ns, "link", "del", "oc-vx1")  # gone between the lookup and the batch
    answers = send(ns, [
        fdb_request("append", vx0, BUM, H2),
        fdb_request("append", vx1, BUM, H2),
        fdb_request("append", vx0, MAC2, H2),
        link_set_request(t0, master=br, up=True),
    ])
    assert [a is None for a in answers] == [True, False, True, True]
    refused = answers[1]
    assert refused is not None and refused.code == errno.ENODEV
    assert refused.describe().startswith("netlink error 19: No such device")
    assert set(fdb(ns, "oc-vx0")) == {(BUM, H2), (MAC2, H2)}
    assert link(ns, "oc-t0")["master"] == "oc-br0"


def test_lost_answers_are_reported_and_the_rest_matched(make_ns: MakeNs) -> None:
    """A receive buffer far too small for the batch: the kernel drops answers
    (ENOBUFS); those requests are reported as refused with that reason, the
    answers that were queued are still matched, and nothing hangs."""
    ns = make_ns("w4")
    ip(ns, "link", "add", "oc-vx0", *VX)
    vx0 = index(ns, "oc-vx0")
    macs = [f"fa:16:3e:01:{i >> 8:02x}:{i & 0xFF:02x}" for i in range(300)]
    answers = send(ns, [fdb_request("append", vx0, mac, H2) for mac in macs], rcvbuf=4096, batch=300)
    lost = [a for a in answers if a is not None]
    assert lost and all(a.code == errno.ENOBUFS and "outcome unknown" in a.message for a in lost)
    assert answers[0] is None  # the first answers fit in the buffer
    assert len(fdb(ns, "oc-vx0")) == 300  # the kernel did every request


def test_netlink_kernel_applies_a_large_batch_in_several_sends(make_ns: MakeNs) -> None:
    ns = make_ns("w5")
    add_taps(ns, P1)
    bridge, vx = "ocbbatch", "ocxbatch"
    desired = KernelState.of(
        [Bridge(bridge, 1450, "overcast:batch")],
        [Vxlan(vx, 4009, "198.18.0.1", 1450, "overcast:batch")],
        [Attachment(vx, bridge, 1450), Attachment(tap_name(P1.id), bridge, 1450)],
        [FdbEntry(vx, f"fa:16:3e:02:{i >> 8:02x}:{i & 0xFF:02x}", f"198.18.{1 + i % 3}.1")
         for i in range(1000)],  # ~48 KiB of requests: more than one sendmsg
    )
    with NetlinkKernel(ns) as kernel:
        converge(kernel, desired)  # devices by pyroute2, the rest raw: one namespace
        assert len(fdb(ns, vx)) == 1000
        assert not os.path.exists(f"/sys/class/net/{bridge}")  # nothing outside it
        converge(kernel, KernelState())
    assert link(ns, tap_name(P1.id)).get("master") is None


def test_a_missing_namespace_is_an_error_not_created() -> None:
    name = f"{RUN}-missing"
    with pytest.raises(FileNotFoundError):
        NetlinkKernel(name)
    assert not os.path.exists(f"/run/netns/{name}")


def test_netlink_kernel_reports_the_refused_change_alone(make_ns: MakeNs) -> None:
    ns = make_ns("w6")
    add_taps(ns, P1, P2)
    bridge, vx = "ocbrefuse", "ocxrefuse"
    tap1, tap2 = tap_name(P1.id), tap_name(P2.id)
    with NetlinkKernel(ns) as kernel:
        converge(kernel, KernelState.of([Bridge(bridge, 1450, "overcast:r")],
                                        [Vxlan(vx, 4010, "198.18.0.1", 1450, "overcast:r")]))
        changes = [
            Change("create", Attachment(tap1, bridge, 1450)),
            Change("create", Attachment(tap2, vx, 1450)),  # a VXLAN device takes no ports
            Change("create", FdbEntry(vx, MAC2, H2)),
        ]
        errors = kernel.apply(changes)
    assert [e.change for e in errors] == [changes[1]]
    assert errors[0].message.startswith("netlink error 95: Operation not supported")
    assert link(ns, tap1)["master"] == bridge and "UP" in link(ns, tap1)["flags"]
    assert set(fdb(ns, vx)) == {(MAC2, H2)}


def test_an_fdb_entry_on_a_device_gone_since_observe_fails_alone(make_ns: MakeNs) -> None:
    """apply resolves names with the ifindexes of the observe just before: a
    device deleted since is refused by the kernel (ENODEV) for its own
    changes only, and an apply with no observe before it dumps the links."""
    ns = make_ns("w7")
    desired = KernelState.of([Bridge(b, 1450, "overcast:g") for b in ("ocbgone1", "ocbgone2")],
                             [Vxlan(x, vni, "198.18.0.1", 1450, "overcast:g")
                              for x, vni in (("ocxgone1", 4011), ("ocxgone2", 4012))])
    with NetlinkKernel(ns) as kernel:
        converge(kernel, desired)
        kernel.observe()
        ip(ns, "link", "del", "ocxgone2")
        changes = [Change("create", FdbEntry("ocxgone1", MAC2, H2)),
                   Change("create", FdbEntry("ocxgone2", MAC3, H3)),
                   Change("create", FdbEntry("ocxgone1", MAC3, H3))]
        errors = kernel.apply(changes)
        assert [e.change for e in errors] == [changes[1]]
        assert errors[0].message.startswith("netlink error 19: No such device")
        assert set(fdb(ns, "ocxgone1")) == {(MAC2, H2), (MAC3, H3)}
        errors = kernel.apply(changes)  # no observe since: names resolved afresh
        assert [(e.change, e.message) for e in errors] == [(changes[1], "ocxgone2: no such device")]


def test_an_os_error_of_one_change_does_not_drop_the_batch(make_ns: MakeNs,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/sys read-only for one device, an underlay address that is not one:
    that change fails with the reason, the queued batch is still sent."""
    ns = make_ns("w8")
    add_taps(ns, P1, P2)
    bridge, vx = "ocbos", "ocxos"
    tap1, tap2 = tap_name(P1.id), tap_name(P2.id)
    with NetlinkKernel(ns) as kernel:
        converge(kernel, KernelState.of([Bridge(bridge, 1450, "overcast:o")],
                                        [Vxlan(vx, 4013, "198.18.0.1", 1450, "overcast:o")]))
        quiet = kernel.ipv6_off

        def read_only_for_tap2(dev: str) -> None:
            if dev == tap2:
                raise PermissionError(30, "Read-only file system")
            quiet(dev)
        monkeypatch.setattr(kernel, "ipv6_off", read_only_for_tap2)
        changes = [
            Change("create", FdbEntry(vx, MAC2, H2)),
            Change("create", Attachment(tap2, bridge, 1450)),
            Change("create", FdbEntry(vx, MAC3, "not-an-address")),
            Change("create", Attachment(tap1, bridge, 1450)),
        ]
        errors = kernel.apply(changes)
    assert [e.change for e in errors] == [changes[1], changes[2]]
    assert "Read-only" in errors[0].message and errors[1].message
    assert link(ns, tap1)["master"] == bridge
    assert link(ns, tap2).get("master") is None
    assert set(fdb(ns, vx)) == {(MAC2, H2)}
