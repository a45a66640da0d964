"""Security groups across hosts, through the API (issue 8): the default
group; a remote group joined and left within a second of the port update
(leaving also cuts the open connection); a rule from a CIDR that admits
exactly that, and whose deletion cuts its open connection both ways; an
agent SIGKILLed and restarted under open connections while a forbidden
port is probed all along.

Tenant ``sg`` (net-sg 10.6.0.0/24): sg1 on host1 and sg2 on host2 in the
project's default group, sg3 on host3 in ``sg-outsiders`` (ingress only
tcp/7031 from anywhere).  Each test puts the ports back in these groups."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from overcast.lab import control, probe, state

from . import traffic
from .conftest import Lab

pytestmark = pytest.mark.root

MEMBER_PORT = 7030  # listened on by sg1 and sg2; no rule names it
OUTSIDER_PORT = 7031  # sg-outsiders admits it from anywhere
GUARDED_PORT = 7032  # the remote group test's rule admits it and the next from sg-members
STREAM_PORT = 7040
PROBED_PORT = 7041  # forbidden to sg3 until the restart test's last rule
WITHIN = 1.0  # a port update or a rule works (or stops working) this long after the API answered


def _make_tenant_sg(lab: Lab) -> dict[str, Any]:
    net, subnet = lab.api.create_network("net-sg", "10.6.0.0/24")
    outsiders = make_group(lab, "sg-outsiders")
    add_rule(lab, outsiders, port=OUTSIDER_PORT, remote_ip_prefix="0.0.0.0/0")
    lab.vm("sg1", "host1", "net-sg", "10.6.0.11")
    lab.vm("sg2", "host2", "net-sg", "10.6.0.12")
    lab.vm("sg3", "host3", "net-sg", "10.6.0.13", security_groups=[outsiders["id"]])
    return {"network": net, "subnet": subnet, "outsiders": outsiders,
            "default": default_group(lab, outsiders["project_id"])}


@pytest.fixture
def sg(lab: Lab) -> dict[str, Any]:
    return lab.tenant("sg", _make_tenant_sg)


def make_group(lab: Lab, name: str) -> dict[str, Any]:
    group: dict[str, Any] = lab.api.call("POST", "/v2.0/security-groups",
                                         {"security_group": {"name": name}})["security_group"]
    return group


def add_rule(lab: Lab, group: dict[str, Any], port: int, up_to: int | None = None,
             **remote: str) -> dict[str, Any]:
    """An ingress rule of ``group``: tcp/``port`` (to ``up_to``) from
    ``remote`` (a prefix or a group)."""
    body = {"security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
            "protocol": "tcp", "port_range_min": port, "port_range_max": up_to or port, **remote}
    rule: dict[str, Any] = lab.api.call("POST", "/v2.0/security-group-rules",
                                        {"security_group_rule": body})["security_group_rule"]
    return rule


def default_group(lab: Lab, project_id: str) -> dict[str, Any]:
    return next(g for g in lab.api.call("GET", "/v2.0/security-groups")["security_groups"]
                if g["name"] == "default" and g["project_id"] == project_id)


def set_groups(lab: Lab, name: str, *groups: dict[str, Any]) -> None:
    lab.api.call("PUT", f"/v2.0/ports/{lab.vms[name]['port_id']}",
                 {"port": {"security_groups": [g["id"] for g in groups]}})


def ip(lab: Lab, name: str) -> str:
    return str(lab.vms[name]["ips"][0])


def ns(lab: Lab, name: str) -> str:
    return str(lab.vms[name]["netns"])


def reaches(lab: Lab, src: str, dst: str, port: int, within: float) -> list[str]:
    """The attempts from ``src`` to ``dst``:``port`` until one is answered
    (at most ``within`` seconds)."""
    with traffic.reach(ns(lab, src), ip(lab, dst), port, "answered", within) as run:
        return run.finish(within + 10.0)


def test_default_group_members_talk_across_hosts_an_outsider_only_gets_replies(
        lab: Lab, sg: dict[str, Any]) -> None:
    with ExitStack() as stack:
        for name, port in (("sg1", MEMBER_PORT), ("sg2", MEMBER_PORT), ("sg3", OUTSIDER_PORT)):
            stack.enter_context(traffic.listen(ns(lab, name), port))
        # members, on host1 and host2, both ways (any protocol: ping too)
        for src, dst in (("sg2", "sg1"), ("sg1", "sg2")):
            first = traffic.first_answer(reaches(lab, src, dst, MEMBER_PORT, 5.0))
            assert first is not None and first.kind == "open", f"{src} -> {dst} never answered"
        assert probe.ping(ns(lab, "sg2"), ip(lab, "sg1"), 2).returncode == 0
        # sg3 (host3) is outside: its SYNs leave it and none arrives at sg1, nor a ping
        syn = f"tcp port {MEMBER_PORT} and tcp[tcpflags] & tcp-syn != 0"
        with probe.Capture(ns(lab, "sg3"), "eth0", syn, "out") as left, \
                probe.Capture(ns(lab, "sg1"), "eth0", syn, "in") as arrived:
            tried = traffic.attempts(reaches(lab, "sg3", "sg1", MEMBER_PORT, 1.0))
        assert tried and not any(a.answered for a in tried), tried
        assert left.frames and arrived.frames == [], arrived.frames
        assert probe.ping(ns(lab, "sg3"), ip(lab, "sg1"), 2).returncode != 0
        # sg1's own connection to sg3 gets its replies, although sg1 admits nothing from sg3
        first = traffic.first_answer(reaches(lab, "sg1", "sg3", OUTSIDER_PORT, 5.0))
        assert first is not None and first.kind == "open", "sg1 -> sg3 got no answer"


def test_a_vm_joining_a_remote_group_on_another_host_gets_in_within_a_second_leaving_gets_out(
        lab: Lab, sg: dict[str, Any]) -> None:
    """sg3 (host3) admits tcp/7032-7033 from sg-members; sg1 (host1) is a
    member; sg2 (host2) joins, then leaves while a connection is open."""
    members = make_group(lab, "sg-members")
    guarded = make_group(lab, "sg-guarded")
    try:
        add_rule(lab, guarded, GUARDED_PORT, GUARDED_PORT + 1, remote_group_id=members["id"])
        set_groups(lab, "sg3", guarded)
        set_groups(lab, "sg1", sg["default"], members)
        with traffic.listen(ns(lab, "sg3"), GUARDED_PORT):
            first = traffic.first_answer(reaches(lab, "sg1", "sg3", GUARDED_PORT, 5.0))
            assert first is not None, "sg1 (a member) never got into sg3"
            sg2_joins(lab, sg, members)
            ends = traffic.stream(ns(lab, "sg3"), ip(lab, "sg3"), ns(lab, "sg2"), GUARDED_PORT + 1)
            with ends[0], ends[1]:
                with traffic.reach(ns(lab, "sg2"), ip(lab, "sg3"), GUARDED_PORT, "silent",
                                   WITHIN + 2.0) as leave:
                    leave.wait_line("open")
                    set_groups(lab, "sg2", sg["default"])
                    answered = time.monotonic()
                    tried = traffic.attempts(leave.finish())
                talked = [traffic.summary(lines)
                          for lines in traffic.stop_at(answered + WITHIN + CUT_SEEN, *ends)]
        assert_closed_within(leave, tried, answered, "sg2 after leaving sg-members")
        assert_cut(talked, answered)
    finally:
        set_groups(lab, "sg2", sg["default"])
        set_groups(lab, "sg1", sg["default"])
        set_groups(lab, "sg3", sg["outsiders"])
        for group in (guarded, members):
            lab.api.call("DELETE", f"/v2.0/security-groups/{group['id']}")


def sg2_joins(lab: Lab, sg: dict[str, Any], members: dict[str, Any]) -> None:
    """sg2, not a member, cannot get into sg3; in sg-members, it can, within
    a second of the API's answer."""
    tried = traffic.attempts(reaches(lab, "sg2", "sg3", GUARDED_PORT, WITHIN))
    assert tried and not any(a.answered for a in tried), tried
    with traffic.reach(ns(lab, "sg2"), ip(lab, "sg3"), GUARDED_PORT, "answered",
                       WITHIN + 2.0) as join:
        join.wait_line("silent")
        set_groups(lab, "sg2", sg["default"], members)
        answered = time.monotonic()
        first = traffic.first_answer(join.finish())
    assert first is not None, f"sg2 not in {WITHIN + 2.0} s after joining sg-members"
    assert first.start - answered < WITHIN, \
        f"sg2 got in {first.start - answered:.3f} s after the API answered"


CUT_SEEN = 0.5  # a cut connection is watched this much longer, its ends still sending


def assert_closed_within(probe: traffic.Running, tried: list[traffic.Attempt], answered: float,
                         what: str) -> None:
    """A probe run ``until`` "silent" (new connections until three in a
    row stay unanswered) ended so, and the first of those three began within
    ``WITHIN`` of the API's answer."""
    assert probe.proc.returncode == 0, f"{what}: still open {WITHIN + 2.0} s later: {tried}"
    out = tried[-3]  # the first of the three unanswered attempts in a row
    assert out.start - answered < WITHIN, \
        f"{what}: a new connection still opened {out.start - answered:.3f} s after the API answered"


def assert_cut(talked: list[dict[str, Any]], answered: float) -> None:
    """A connection whose rule went at ``answered`` (the API's answer)
    carried data both ways until then and nothing either way from
    ``WITHIN`` after it, while both ends kept sending."""
    for end, other, way in ((talked[0], talked[1], "to the server"),
                            (talked[1], talked[0], "to the client")):
        times = end["times"]
        assert [t for t in times if answered - 0.2 < t <= answered], \
            f"nothing came {way} just before the change"
        late = [t - answered for t in times if t - answered >= WITHIN]
        assert not late, f"data still came {way} {late[0]:.3f} s after the API answered"
        assert other["sent"] - len(times) >= CUT_SEEN / 0.02 / 2, \
            f"{way}: {other['sent']} sent, {len(times)} came"


def test_a_rule_from_a_cidr_admits_exactly_that_and_deleting_it_closes_its_connections(
        lab: Lab, sg: dict[str, Any]) -> None:
    """sg3 (host3) in a group whose one rule admits tcp/22 from 10.6.0.12/30:
    sg2 (.12, host2) gets in, not on tcp/23; sg1 (.11, host1) does not; the
    rule deleted, sg2's open connection stops both ways and a new one fails."""
    ssh = make_group(lab, "sg-ssh")
    try:
        rule = add_rule(lab, ssh, 22, remote_ip_prefix="10.6.0.12/30")
        set_groups(lab, "sg3", ssh)
        with traffic.listen(ns(lab, "sg3"), 22):
            first = traffic.first_answer(reaches(lab, "sg2", "sg3", 22, 5.0))
            assert first is not None and first.kind == "open", "sg2 never got to tcp/22"
            # nothing listens on tcp/23: a SYN let through would be answered (refused)
            with traffic.reach(ns(lab, "sg2"), ip(lab, "sg3"), 23, "answered", WITHIN) as port23, \
                    traffic.reach(ns(lab, "sg1"), ip(lab, "sg3"), 22, "answered", WITHIN) as other:
                for run, what in ((port23, "sg2 to tcp/23"), (other, "sg1 (.11) to tcp/22")):
                    tried = traffic.attempts(run.finish())
                    assert tried and not any(a.answered for a in tried), f"{what}: {tried}"
        ends = traffic.stream(ns(lab, "sg3"), ip(lab, "sg3"), ns(lab, "sg2"), 22)
        with ends[0], ends[1]:
            # the talker's socket still listens: a new connection let through opens;
            # new connections are tried until three in a row stay silent
            with traffic.reach(ns(lab, "sg2"), ip(lab, "sg3"), 22, "silent",
                               WITHIN + 2.0) as probe:
                probe.wait_line("open")
                lab.api.call("DELETE", f"/v2.0/security-group-rules/{rule['id']}")
                answered = time.monotonic()
                tried = traffic.attempts(probe.finish())
            talked = [traffic.summary(lines)
                      for lines in traffic.stop_at(answered + WITHIN + CUT_SEEN, *ends)]
        assert_closed_within(probe, tried, answered, "tcp/22 after the rule's delete")
        assert_cut(talked, answered)
    finally:
        set_groups(lab, "sg3", sg["outsiders"])
        lab.api.call("DELETE", f"/v2.0/security-groups/{ssh['id']}")


@pytest.fixture
def host1_agent_back(lab: Lab) -> Iterator[None]:
    """Whatever the test did to host1's agent, it runs when the test ends."""
    yield
    st = state.load()
    if st is None or "agent-host1" not in st.processes:
        control.start_agent(lab.topo, lab.topo.host("host1"))
        control.wait_agents(lab.topo, ["host1"])


PING_REPLY = re.compile(r"^\[(\d+\.\d+)\] .* icmp_seq=(\d+) ")


def ping_replies(lines: list[str]) -> list[tuple[float, int]]:
    """(wall time, sequence number) of every reply of ``ping -D``."""
    return [(float(m[1]), int(m[2])) for m in map(PING_REPLY.match, lines) if m]


def kill_and_restart_agent(lab: Lab, host: str, pinger: traffic.Running) -> tuple[float, float]:
    """SIGKILL ``host``'s agent (by its PID), see ``pinger`` answered while it
    is dead, start it again and wait for its first pass; when it was killed
    (monotonic, wall clock)."""
    log = control.log_path(f"agent-{host}")
    offset = log.stat().st_size
    control.stop_process(f"agent-{host}", sig=signal.SIGKILL)
    killed, killed_wall = time.monotonic(), time.time()
    pinger.wait_for(lambda lines: ping_replies(lines)[-1][0] > killed_wall + 0.2, 5.0,
                    "ping replies while the agent is dead")
    control.start_agent(lab.topo, lab.topo.host(host))
    control.wait_agents(lab.topo, [host])
    deadline = time.monotonic() + 10.0
    while "first pass:" not in log.read_text()[offset:]:
        assert time.monotonic() < deadline, \
            f"the restarted agent on {host} made no pass:\n" + log.read_text()[offset:][-3000:]
        time.sleep(0.05)
    return killed, killed_wall


def test_agent_sigkilled_and_restarted_under_open_connections_loses_nothing_opens_nothing(
        lab: Lab, sg: dict[str, Any], host1_agent_back: None) -> None:
    """sg1 (host1) streams with sg2 (host2) and sg2 pings it, while sg3 (host3)
    probes sg1's tcp/7041 without a pause; host1's agent is SIGKILLed and
    started again; then a rule lets sg3 in, which the restarted agent enforces."""
    ns1, ns2, ns3 = ns(lab, "sg1"), ns(lab, "sg2"), ns(lab, "sg3")
    with ExitStack() as stack:
        ends = traffic.stream(ns1, ip(lab, "sg1"), ns2, STREAM_PORT)
        for end in ends:
            stack.enter_context(end)
        pinger = stack.enter_context(traffic.Running(
            ns2, ["ping", "-n", "-D", "-i", "0.05", "-W", "1", ip(lab, "sg1")]))
        prober = stack.enter_context(
            traffic.reach(ns3, ip(lab, "sg1"), PROBED_PORT, "stdin", 60.0))
        prober.wait_line("silent")
        pinger.wait_for(lambda lines: bool(ping_replies(lines)), 5.0, "a ping reply")
        killed, killed_wall = kill_and_restart_agent(lab, "host1", pinger)
        before = time.monotonic()
        rule = add_rule(lab, sg["default"], port=PROBED_PORT,
                        remote_ip_prefix=f"{ip(lab, 'sg3')}/32")
        try:
            answered = time.monotonic()
            prober.wait_for(lambda lines: traffic.first_answer(lines) is not None,
                            WITHIN + 2.0, f"sg3 probing tcp/{PROBED_PORT} after its rule")
            probed = traffic.attempts(prober.stop())
            talked = [traffic.summary(lines) for lines in traffic.stop_all(*ends)]
            replies = ping_replies(pinger.interrupt())
        finally:
            lab.api.call("DELETE", f"/v2.0/security-group-rules/{rule['id']}")
    assert_never_answered_before(probed, killed, before, answered)
    assert_streamed_without_loss(talked, answered)
    seqs = [seq for _, seq in replies]
    assert seqs == list(range(1, len(seqs) + 1)), \
        f"lost pings: {sorted(set(range(1, seqs[-1] + 1)) - set(seqs))}"
    assert replies[0][0] < killed_wall < replies[-1][0]


def assert_never_answered_before(probed: list[traffic.Attempt], killed: float, before: float,
                                 answered: float) -> None:
    """The probed port answered no attempt made before its rule was asked
    for, attempts followed each other without a pause from before the kill
    on, and the rule worked within a second of the API's answer."""
    early = [a for a in probed if a.answered and a.start < before]
    assert not early, f"tcp/{PROBED_PORT} answered sg3 before its rule: {early[:3]}"
    first = next(a for a in probed if a.answered)
    starts = [a.start for a in probed if a.start < first.start]
    assert starts[0] < killed
    pause = max(b - a for a, b in zip(starts, starts[1:], strict=False))
    assert pause < 0.5, f"the probe paused {pause:.2f} s"
    assert first.start - answered < WITHIN, \
        f"the rule worked {first.start - answered:.3f} s after the API answered"


def assert_streamed_without_loss(talked: list[dict[str, Any]], after: float) -> None:
    """Each end got the other's numbers in order, up to about its last one
    and after ``after``, and retransmitted nothing (no segment was lost)."""
    for end, other in ((talked[0], talked[1]), (talked[1], talked[0])):
        got = end["numbers"]
        assert end["error"] == "" and got == list(range(len(got))), end["error"]
        assert len(got) >= other["sent"] - 10 and end["times"][-1] > after, \
            f"got {len(got)} of {other['sent']} numbers"
        assert end["retransmitted"] == 0, f"{end['retransmitted']} segments retransmitted"
