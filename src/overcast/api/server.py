"""``overcast server``: run the API on the embedded (or any) store."""

from __future__ import annotations

import argparse
import logging
import sys

from overcast.api.app import create_app
from overcast.api.auth import Auth
from overcast.api.config import ApiConfig
from overcast.api.service import Api
from overcast.store import open_store

DEFAULT_STORE = "sqlite:///var/lib/overcast/overcast.db"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="overcast server", description="Run the Overcast API.")
    p.add_argument("--bind", default="127.0.0.1:9696", help="HOST:PORT (default %(default)s)")
    p.add_argument("--store", default=DEFAULT_STORE, help="store URL (default %(default)s)")
    p.add_argument("--auth-config", help="YAML file mapping tokens to project and role; "
                   "without it the API runs in no-auth mode (bind to loopback only)")
    p.add_argument("--vni-range", default="1:16777215", help="VXLAN VNI range LO:HI")
    p.add_argument("--underlay-mtu", type=int, default=1500,
                   help="underlay MTU; VXLAN tenant networks get 50 bytes less")
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[Api, str, int]:
    host, _, port = args.bind.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"overcast server: --bind must be HOST:PORT, not '{args.bind}'")
    lo, _, hi = args.vni_range.partition(":")
    if not (lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi) <= 16_777_215):
        raise SystemExit(f"overcast server: --vni-range must be LO:HI within 1:16777215, "
                         f"not '{args.vni_range}'")
    if args.auth_config:
        auth = Auth.from_file(args.auth_config)
    else:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("overcast server: no-auth mode binds to loopback only; give "
                             "--auth-config to listen on other addresses")
        auth = Auth.noauth()
    cfg = ApiConfig(vni_range=(int(lo), int(hi)), underlay_mtu=args.underlay_mtu)
    return Api(open_store(args.store), cfg, auth), host, int(port)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    api, host, port = build(args)
    uvicorn.run(create_app(api), host=host, port=port, log_level=args.log_level,
                access_log=False)
    return 0
