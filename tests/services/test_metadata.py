"""services/metadata.py: the EC2-style tree a port reads, and nothing for
an address that is no port here."""

from __future__ import annotations

from overcast.services.metadata import MetaPort, respond

PORT = MetaPort(ip="10.0.0.5", port_id="p1", instance_id="vm-1", mac="fa:16:3e:00:00:05",
                local_hostname="web.a.example", cidr="10.0.0.0/24", public_ipv4="203.0.113.9")


def text(path: str, port: MetaPort | None = PORT) -> tuple[int, str]:
    reply = respond("GET", path, port)
    return reply.status, reply.body.decode()


def test_the_tree_of_a_port() -> None:
    assert text("/") == (200, "latest/\n")
    assert text("/latest/") == (200, "meta-data/\n")
    status, listing = text("/latest/meta-data/")
    assert status == 200 and listing.split() == [
        "hostname", "instance-id", "local-hostname", "local-ipv4", "mac", "network/",
        "public-ipv4"]
    assert text("/latest/meta-data/local-ipv4") == (200, "10.0.0.5")
    assert text("/latest/meta-data/public-ipv4") == (200, "203.0.113.9")
    assert text("/latest/meta-data/instance-id") == (200, "vm-1")
    assert text("/latest/meta-data/local-hostname") == (200, "web.a.example")
    mac = "/latest/meta-data/network/interfaces/macs/fa:16:3e:00:00:05/"
    assert text(mac + "subnet-ipv4-cidr-block") == (200, "10.0.0.0/24")
    assert text(mac + "local-ipv4s?x=1") == (200, "10.0.0.5")


def test_a_stranger_and_a_wrong_path_get_nothing() -> None:
    assert text("/latest/meta-data/local-ipv4", None)[0] == 404
    assert text("/latest/meta-data/nothing")[0] == 404
    assert text("/2009-04-04/meta-data/")[0] == 404
    assert text("/latest/meta-data/local-ipv4/more")[0] == 404
    assert respond("PUT", "/latest/", PORT).status == 405
    no_fip = MetaPort("10.0.0.6", "p2", "", "fa:16:3e:00:00:06", "host-10-0-0-6.a.example")
    assert text("/latest/meta-data/public-ipv4", no_fip)[0] == 404
    assert text("/latest/meta-data/instance-id", no_fip) == (200, "p2")
