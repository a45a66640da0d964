"""Run a fixed sequence of `openstack` CLI commands and SDK calls against an
endpoint and print, for each, the HTTP requests it made (needs the endpoint to
be tests/clients/record_server.py, whose log file is read).

    python tests/clients/record_server.py --port 9797 --log /tmp/rec.jsonl &
    python tests/clients/record_run.py --endpoint http://127.0.0.1:9797 --log /tmp/rec.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

OPENSTACK = str(Path(sys.executable).with_name("openstack"))

COMMANDS = [
    "network create net1",
    "network list",
    "network show net1",
    "network set --name net1b --description hello net1",
    "network set --name net1 net1b",
    "subnet create --network net1 --subnet-range 10.0.0.0/24 "
    "--allocation-pool start=10.0.0.10,end=10.0.0.20 --dns-nameserver 8.8.8.8 sub1",
    "port create --network net1 --fixed-ip subnet=sub1,ip-address=10.0.0.15 port1",
    "security group create sg1",
    "security group rule create --protocol tcp --dst-port 22 --remote-ip 0.0.0.0/0 sg1",
    "security group rule delete {rule_id}",
    "network create --external public",
    "subnet create --network public --subnet-range 203.0.113.0/24 --no-dhcp pubsub",
    "router create r1",
    "router add subnet r1 sub1",
    "router set --external-gateway public r1",
    "floating ip create public",
    "floating ip set --port port1 {fip_id}",
    "network qos policy create qp1",
    "network qos rule create --type bandwidth-limit --max-kbps 1000 --max-burst-kbits 100 "
    "--egress qp1",
    "network delete net1",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default="http://127.0.0.1:9797")
    ap.add_argument("--log", default="/tmp/rec.jsonl")
    ap.add_argument("--headers", action="store_true")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--format", default="json", help="json or table")
    a = ap.parse_args()
    env = dict(os.environ, OS_AUTH_TYPE="none", OS_ENDPOINT=a.endpoint)
    for k in ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN"):
        env.pop(k, None)
    log = Path(a.log)
    ctx: dict[str, str] = {}
    for cmd in COMMANDS:
        cmd = cmd.format(**ctx) if "{" in cmd else cmd
        start = log.stat().st_size if log.exists() else 0
        p = subprocess.run(
            [OPENSTACK, *shlex.split(cmd), "-f", a.format]
            if not cmd.split()[-2] == "delete"
            and "set" not in cmd.split()[:3]
            and "add" not in cmd.split()[:2]
            else [OPENSTACK, *shlex.split(cmd)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        print(f"### openstack {cmd}  (rc={p.returncode})")
        with log.open() as f:
            f.seek(start)
            for line in f:
                r = json.loads(line)
                q = "?" + r["query"] if r["query"] else ""
                print(f"  {r['method']} {r['path']}{q}  {r['body'] or ''}")
                if a.headers:
                    print("     ", r["headers"])
        if p.returncode:
            print("  STDERR:", p.stderr.strip()[-2000:])
        else:
            try:
                out = json.loads(p.stdout)
            except ValueError:
                out = p.stdout if "-v" in sys.argv else None
            if cmd.startswith("security group rule create") and isinstance(out, dict):
                ctx["rule_id"] = out["id"]
            if cmd.startswith("floating ip create") and isinstance(out, dict):
                ctx["fip_id"] = out["id"]
            if out is not None and "-v" in sys.argv:
                print("  OUT:", json.dumps(out)[:1500])


if __name__ == "__main__":
    main()
