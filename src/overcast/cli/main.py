"""Entry point of the ``overcast`` command.

``overcast network|subnet|port|security group|router|floating ip ...`` are
clients of the REST API (verbs and options as in the ``openstack`` CLI);
``overcast server|agent|lab ...`` hand the rest of the command line to the
server, the host agent and the lab, imported only when asked for.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Sequence

import httpx

from overcast.cli import agent, floatingip, network, port, qos, router, security, subnet
from overcast.cli.client import DEFAULT_URL, Client, CliError
from overcast.cli.output import render
from overcast.cli.resource import group

# command word -> (module, function(argv: list[str]) -> int)
PASSTHROUGH = {
    "server": ("overcast.api.server", "main", "run the Neutron v2.0 API server"),
    "agent": ("overcast.agent.main", "main", "run the host agent (keeps this hypervisor's kernel as the API says)"),
    "public-dns": ("overcast.publicdns", "main", "run the authoritative DNS server of the public zone"),
    "lab": ("overcast.lab.cli", "main", "build and drive the emulated data center (namespaces oc-*, needs root)"),
}
GLOBAL_OPTIONS = {"--os-url": "OVERCAST_URL", "--os-token": "OVERCAST_TOKEN"}


@functools.cache  # parsing does not change the parser; building it costs ~70 ms
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overcast",
        description="Overcast: virtual networks for an IaaS cloud (Neutron v2.0 API client).",
    )
    parser.add_argument("--os-url", metavar="URL",
                        help=f"API endpoint (env OVERCAST_URL, default {DEFAULT_URL})")
    parser.add_argument("--os-token", metavar="TOKEN",
                        help="token sent as X-Auth-Token (env OVERCAST_TOKEN)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    nets = group(sub, "network", "manage networks, and their QoS policies and host agents")
    network.register(nets)
    qos.register(nets)
    agent.register(nets)
    subnet.register(sub)
    port.register(sub)
    security.register(sub)
    router.register(sub)
    floatingip.register(sub)
    for name, (_, _, help_) in PASSTHROUGH.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def split_passthrough(argv: Sequence[str]) -> tuple[dict[str, str], str, list[str]] | None:
    """If the command is server/agent/lab: (global options, command, rest)."""
    given: dict[str, str] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        opt, eq, value = word.partition("=")
        if opt in GLOBAL_OPTIONS and eq:
            given[opt], i = value, i + 1
        elif word in GLOBAL_OPTIONS and i + 1 < len(argv):
            given[word], i = argv[i + 1], i + 2
        elif word == "--debug":
            i += 1
        elif word in PASSTHROUGH:
            return given, word, list(argv[i + 1:])
        else:
            return None
    return None


def run_passthrough(given: dict[str, str], name: str, rest: list[str]) -> int:
    for opt, value in given.items():  # the server/agent/lab read the same env
        os.environ[GLOBAL_OPTIONS[opt]] = value
    module_name, func_name, _ = PASSTHROUGH[name]
    try:
        module = importlib.import_module(module_name)
        func = getattr(module, func_name)
    except (ImportError, AttributeError) as exc:
        print(f"overcast {name}: not available in this installation ({exc})", file=sys.stderr)
        return 1
    try:
        code = func(rest)
    except SystemExit as exc:  # --help, a usage error (printed), or a refusal with its reason
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)  # what the interpreter prints for sys.exit("...")
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ModuleNotFoundError as exc:  # a dependency imported lazily inside
        print(f"overcast {name}: needs the Python package '{exc.name}' ({exc})", file=sys.stderr)
        return 1
    return int(code or 0)


def run(args: argparse.Namespace, transport: httpx.BaseTransport | None) -> int:
    try:
        client = Client(args.os_url, args.os_token, transport)
        try:
            result = args.handler(client, args)
        finally:
            client.close()
        if result is not None:
            text = render(result, getattr(args, "format", "table"), getattr(args, "columns", []))
            if text:
                print(text)
    except CliError as exc:
        if args.debug:
            raise
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug of ours: say so in one line unless --debug
        if args.debug:
            raise
        print(f"Error: internal error in overcast: {exc.__class__.__name__}: {exc} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run one ``overcast`` command; ``transport`` lets tests stand in for the server."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = split_passthrough(argv)
    if passthrough is not None:
        return run_passthrough(*passthrough)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return run(args, transport)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
