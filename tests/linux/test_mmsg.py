"""linux/mmsg.py on 127.0.0.1 (no root): datagrams in and replies out a batch at
a time, each reply to the address its datagram came from; a reply the kernel
refuses to send (here: to UDP port 0) is lost alone, not with the rest.  IPv6
sources are in tests/linux/test_dns_responder.py (in a namespace of its own)."""

from __future__ import annotations

import socket

import pytest

from overcast.linux import mmsg


def _pair() -> tuple[socket.socket, list[socket.socket]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    clients = []
    for _ in range(3):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.settimeout(2)
        clients.append(client)
    return server, clients


def test_a_batch_is_answered_each_to_its_sender_and_a_bad_address_loses_one() -> None:
    assert mmsg.available()  # Linux's C library has recvmmsg and sendmmsg
    server, clients = _pair()
    try:
        batch = mmsg.Batch(server, slots=8)
        for n, client in enumerate(clients):
            client.sendto(b"query %d" % n, server.getsockname())
        got = 0
        while got < 3:
            got += batch.receive()
        assert batch.sources(3) == ["127.0.0.1"] * 3
        datagrams = [batch.data(slot) for slot in range(3)]
        assert sorted(datagrams) == [b"query 0", b"query 1", b"query 2"]
        ports = [batch.address(slot)[1] for slot in range(3)]
        assert sorted(ports) == sorted(c.getsockname()[1] for c in clients)
        bad = ports.index(clients[0].getsockname()[1])
        batch._names[bad * mmsg.NAME + 2:bad * mmsg.NAME + 4] = bytes(2)  # its port: 0
        for slot in range(3):
            assert batch.reply(slot, b"reply to " + datagrams[slot])
        assert batch.flush() == 1
        for n, client in enumerate(clients[1:], 1):
            assert client.recv(100) == b"reply to query %d" % n
        clients[0].settimeout(0.2)
        with pytest.raises(TimeoutError):
            clients[0].recv(100)
        assert not batch.reply(0, bytes(mmsg.SLOT + 1))  # too long for a slot: sent another way
        assert batch.receive() == 0  # nothing waiting: no error
    finally:
        for sock in (server, *clients):
            sock.close()
