"""List queries: filters (repeated key = OR), fields, sorting, pagination with links."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from .helpers import Direct, Projects, assert_error


@pytest.fixture
def nets(client: Direct) -> list[dict[str, Any]]:
    made = []
    for i, name in enumerate(["delta", "alpha", "echo", "bravo", "charlie", "alpha",
                              "foxtrot", "golf", "hotel", "india", "juliet"]):
        made.append(client.network(name=name, mtu=1400 + i % 3, shared=(i % 2 == 0)))
    return made


def names(reply) -> list[str]:  # type: ignore[no-untyped-def]
    return [n["name"] for n in reply["networks"]]


def test_filter_on_any_attribute(client: Direct, nets: list[dict[str, Any]]) -> None:
    r = client.get("/v2.0/networks", params=[("name", "alpha")])
    assert r.status == 200 and names(r) == ["alpha", "alpha"]
    r = client.get("/v2.0/networks", params=[("mtu", "1401")])
    assert sorted(names(r)) == sorted(n["name"] for n in nets if n["mtu"] == 1401)
    r = client.get("/v2.0/networks", params=[("shared", "true")])
    assert sorted(names(r)) == sorted(n["name"] for n in nets if n["shared"])
    r = client.get("/v2.0/networks", params=[("shared", "False"), ("mtu", "1400")])
    assert sorted(names(r)) == sorted(n["name"] for n in nets
                                      if not n["shared"] and n["mtu"] == 1400)
    r = client.get("/v2.0/networks", params=[("id", nets[3]["id"])])
    assert names(r) == ["bravo"]
    r = client.get("/v2.0/networks", params=[("provider:network_type", "vxlan")])
    assert len(names(r)) == len(nets)


def test_repeated_filter_key_means_or(client: Direct, nets: list[dict[str, Any]]) -> None:
    r = client.get("/v2.0/networks", params=[("name", "echo"), ("name", "golf"),
                                              ("name", "nobody")])
    assert sorted(names(r)) == ["echo", "golf"]
    # OR inside a key, AND across keys
    r = client.get("/v2.0/networks", params=[("name", "echo"), ("name", "delta"),
                                              ("mtu", "1402")])
    assert names(r) == ["echo"]


def test_unknown_filter_is_400(client: Direct, nets: list[dict[str, Any]]) -> None:
    assert_error(client.get("/v2.0/networks", params=[("colour", "red")]), 400, "colour")


def test_filter_on_port_fixed_ips(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    a = client.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.10"}])
    client.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.11"}])
    r = client.get("/v2.0/ports", params=[("fixed_ips", "ip_address=10.0.0.10")])
    assert [p["id"] for p in r["ports"]] == [a["id"]]
    r = client.get("/v2.0/ports", params=[("fixed_ips", f"subnet_id={subnet['id']}")])
    assert len(r["ports"]) == 2
    r = client.get("/v2.0/ports", params=[("mac_address", a["mac_address"])])
    assert [p["id"] for p in r["ports"]] == [a["id"]]


def test_fields_selects_attributes(client: Direct, nets: list[dict[str, Any]]) -> None:
    r = client.get("/v2.0/networks", params=[("fields", "id"), ("fields", "name")])
    assert r.status == 200
    assert all(set(n) == {"id", "name"} for n in r["networks"])
    one = client.get(f"/v2.0/networks/{nets[0]['id']}", params=[("fields", "mtu")])
    assert one["network"] == {"mtu": nets[0]["mtu"]}


def test_sort_key_and_dir(client: Direct, nets: list[dict[str, Any]]) -> None:
    r = client.get("/v2.0/networks", params=[("sort_key", "name"), ("sort_dir", "asc")])
    assert names(r) == sorted(n["name"] for n in nets)
    r = client.get("/v2.0/networks", params=[("sort_key", "name"), ("sort_dir", "desc")])
    assert names(r) == sorted((n["name"] for n in nets), reverse=True)
    # two keys: mtu descending, then name ascending
    r = client.get("/v2.0/networks", params=[("sort_key", "mtu"), ("sort_dir", "desc"),
                                              ("sort_key", "name"), ("sort_dir", "asc")])
    want = sorted(nets, key=lambda n: (-n["mtu"], n["name"]))
    assert names(r) == [n["name"] for n in want]


def test_bad_sort_is_400(client: Direct, nets: list[dict[str, Any]]) -> None:
    assert_error(client.get("/v2.0/networks", params=[("sort_key", "colour")]), 400, "colour")
    assert_error(client.get("/v2.0/networks", params=[("sort_key", "name"),
                                                       ("sort_dir", "sideways")]),
                 400, "sideways")


def test_bad_limit_is_400_and_an_unknown_network_marker_404(client: Direct,
                                                            nets: list[dict[str, Any]]) -> None:
    assert_error(client.get("/v2.0/networks", params=[("limit", "many")]), 400, "many")
    assert_error(client.get("/v2.0/networks", params=[("limit", "-1")]), 400, "-1")
    # Neutron's core plugin looks the marker up as a show does (_get_network)
    assert_error(client.get("/v2.0/networks", params=[("limit", "2"), ("marker", "gone")]),
                 404, "Network gone could not be found.", type="NetworkNotFound")


def test_a_marker_without_a_limit_is_ignored(client: Direct,
                                            nets: list[dict[str, Any]]) -> None:
    """Neutron's get_limit_and_marker drops the marker when no limit (or 0) is
    given, and _get_marker_obj looks it up only with a limit: the whole
    collection, no links, and an unknown marker is no 404."""
    charlie = next(n for n in nets if n["name"] == "charlie")
    whole = client.get("/v2.0/networks", params=[("sort_key", "name")])
    for extra in ([], [("limit", "0")]):
        r = client.get("/v2.0/networks", params=[("sort_key", "name"),
                                                  ("marker", charlie["id"]), *extra])
        assert r.status == 200, r.body
        assert names(r) == names(whole) and "alpha" in names(r)
        assert "networks_links" not in r.body
    r = client.get("/v2.0/networks", params=[("marker", "gone")])
    assert r.status == 200 and len(names(r)) == len(nets), r.body


def test_a_marker_places_the_page_by_its_values(client: Direct,
                                                nets: list[dict[str, Any]]) -> None:
    """As Neutron's marker object: the page is what sorts after the marker,
    whether or not the marker passes the filters."""
    charlie = next(n for n in nets if n["name"] == "charlie")
    assert charlie["shared"] is True
    r = client.get("/v2.0/networks", params=[("sort_key", "name"), ("shared", "false"),
                                              ("limit", "2"), ("marker", charlie["id"])])
    assert r.status == 200, r.body
    assert names(r) == ["golf", "india"]  # the unshared names after "charlie"


def _policy_links(reply) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {link["rel"]: link["href"] for link in reply.body.get("policies_links", [])}


def test_a_marker_the_caller_may_not_see_pages_from_the_start() -> None:
    """Neutron's object layer (QoS policies, every kind but networks, ports and
    routers) finds no marker object the caller may not see and pages from the
    start; the previous link still leads back from the end.  Tempest walks an
    admin's policies with next links, then follows the last as a member."""
    cloud = Projects()
    for name in ("a", "b"):
        cloud.ops.create("policy", "qos/policies", name=name, description="walk")
    theirs = cloud.ops.create("policy", "qos/policies", name="c", description="walk")
    mine = cloud.alice.get("/v2.0/qos/policies").body["policies"]
    assert mine == []
    params = [("limit", "1"), ("sort_key", "name"), ("description", "walk"),
              ("marker", theirs["id"])]
    r = cloud.alice.get("/v2.0/qos/policies", params=params)
    assert r.status == 200 and r["policies"] == [], r.body
    links = _policy_links(r)
    assert set(links) == {"previous"}
    back = urlsplit(links["previous"])
    assert ("page_reverse", "True") in parse_qsl(back.query)
    assert "marker" not in dict(parse_qsl(back.query))
    # the admin, who sees it, gets the page after it: none, and no next link
    r = cloud.ops.get("/v2.0/qos/policies", params=params)
    assert r.status == 200 and r["policies"] == [] and set(_policy_links(r)) == {"previous"}
    r = cloud.ops.get("/v2.0/qos/policies", params=[*params[:3], ("marker", theirs["id"]),
                                                     ("page_reverse", "True")])
    assert [p["name"] for p in r["policies"]] == ["b"]
    # a network is looked up as a show does: another project's is not there
    net = cloud.alice.network(name="hers")
    assert_error(cloud.bob.get("/v2.0/networks", params=[("limit", "1"), ("marker", net["id"])]),
                 404, net["id"], type="NetworkNotFound")


def _follow(client: Direct, href: str):  # type: ignore[no-untyped-def]
    url = urlsplit(href)
    assert url.path == "/v2.0/networks"
    return client.get(url.path, params=parse_qsl(url.query))


def _link(reply, rel: str) -> str | None:  # type: ignore[no-untyped-def]
    for link in reply.body.get("networks_links", []):
        if link["rel"] == rel:
            return str(link["href"])
    return None


@pytest.mark.parametrize("limit", [1, 3, 4, 11, 20])
@pytest.mark.parametrize("sort", [[], [("sort_key", "name"), ("sort_dir", "desc")]])
def test_pagination_walks_every_item_once(client: Direct, nets: list[dict[str, Any]], limit: int,
                                          sort: list[tuple[str, str]]) -> None:
    full = client.get("/v2.0/networks", params=sort)
    order = [n["id"] for n in full["networks"]]
    assert sorted(order) == sorted(n["id"] for n in nets)

    pages: list[list[str]] = []
    r = client.get("/v2.0/networks", params=[*sort, ("limit", str(limit))])
    assert _link(r, "previous") is None
    while True:
        assert r.status == 200
        page = [n["id"] for n in r["networks"]]
        assert len(page) <= limit
        pages.append(page)
        nxt = _link(r, "next")
        assert (nxt is None) == (len(page) < limit)  # Neutron: a full page has a next one
        if nxt is None:
            break
        assert len(pages) <= len(nets)
        r = _follow(client, nxt)
    walked = [i for p in pages for i in p]
    assert walked == order  # every item exactly once, in the sort order
    assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)

    # and back again from the last page with the previous links
    back: list[list[str]] = [pages[-1]]
    while (prev := _link(r, "previous")) is not None:
        r = _follow(client, prev)
        back.append([n["id"] for n in r["networks"]])
        assert len(back) <= len(nets) + 2  # an empty page at either end
    assert [i for p in reversed(back) for i in p] == order


def test_pagination_keeps_filters(client: Direct, nets: list[dict[str, Any]]) -> None:
    params = [("shared", "true"), ("limit", "2")]
    r = client.get("/v2.0/networks", params=params)
    seen = [n["id"] for n in r["networks"]]
    while (nxt := _link(r, "next")) is not None:
        assert "shared=true" in nxt
        r = _follow(client, nxt)
        seen += [n["id"] for n in r["networks"]]
    assert sorted(seen) == sorted(n["id"] for n in nets if n["shared"])


def test_no_links_without_limit(client: Direct, nets: list[dict[str, Any]]) -> None:
    r = client.get("/v2.0/networks")
    assert "networks_links" not in r.body


def test_listing_shortcut_sees_what_the_full_rendering_shows(client: Direct) -> None:
    """Listings filter and sort on stored values before rendering a page; for
    that to be invisible, every stored attribute must render as stored."""
    from overcast.api import Api
    from overcast.api.auth import Context
    from overcast.api.registry import HANDLERS

    ext = client.network(name="ext", **{"router:external": True})
    client.subnet(ext["id"], "203.0.113.0/24", enable_dhcp=False)
    net = client.network(name="n")
    sub = client.subnet(net["id"], "10.0.0.0/24")
    port = client.port(net["id"], device_id="vm", **{"binding:host_id": "h1"})
    router = client.create("router", "routers", name="r",
                           external_gateway_info={"network_id": ext["id"]})
    assert client.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                      {"subnet_id": sub["id"]}).status == 200
    client.create("floatingip", "floatingips", floating_network_id=ext["id"], port_id=port["id"])
    policy = client.create("policy", "qos/policies", name="q")
    assert client.post(f"/v2.0/qos/policies/{policy['id']}/bandwidth_limit_rules",
                       {"bandwidth_limit_rule": {"max_kbps": 1000}}).status == 201
    client.create("security_group", "security-groups", name="sg")
    api: Api = client.api
    repo = api.session.read(bulk=True)
    admin = Context(project_id="lab", is_admin=True)
    checked = 0
    for h in HANDLERS.values():
        schema = h.schema
        names = {a.name for a in schema.attrs if a.field is not None and a.render}
        # what depends on the caller (``shared`` of an RBAC object) is never taken as stored
        if names & schema.caller_attrs:
            assert schema.stored_view(admin, names) is None, schema.member
        names -= schema.caller_attrs
        view = schema.stored_view(admin, names)
        assert view is not None, schema.member
        for obj in repo.all(schema.cls):
            full = schema.render(repo, obj)
            assert {n: full[n] for n in names} == view(obj), schema.member
            checked += 1
    assert checked >= 10
