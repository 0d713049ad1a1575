"""`memdb` command line: run and inspect a local three-zone cluster.

  memdb cluster up [--dir DIR] [--base-port P] [--shards N] [--detach] [--grpc-tls-dir TLSDIR]
                   [--txlog-tls-dir TLSDIR] [--no-zone-proxies]
                   [--snapshot-every N]
  memdb cluster status [--dir DIR] [--json]
  memdb cluster down [--dir DIR]
  memdb cluster failover [--dir DIR] [--shard S] [--to NODE]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from memdb import chaos
from memdb import localcluster as lc


def cluster_up(args: argparse.Namespace) -> int:
    plan = lc.ClusterPlan.load(args.dir)
    if plan is None:
        plan = lc.ClusterPlan.make(args.dir, args.base_port, args.shards, args.grpc_tls_dir or "",
                                   zone_proxies=not args.no_zone_proxies, snapshot_every=args.snapshot_every,
                                   txlog_tls_dir=args.txlog_tls_dir or "")
        plan.save()
    elif (args.base_port, args.shards) != (plan.base_port, plan.shards) and args.explicit_layout:
        print(f"{args.dir} holds a cluster with base port {plan.base_port} and {plan.shards} shard(s); "
              f"using that", file=sys.stderr)
    tls_dir = os.path.abspath(args.grpc_tls_dir) if args.grpc_tls_dir else ""
    if args.grpc_tls_dir is not None and tls_dir != plan.grpc_tls_dir:     # "" turns TLS off again
        plan.grpc_tls_dir = tls_dir
        plan.save()
    if args.txlog_tls_dir is not None and plan.txlog_tls_dir != (os.path.abspath(args.txlog_tls_dir)
                                                                 if args.txlog_tls_dir else ""):
        plan.txlog_tls_dir = os.path.abspath(args.txlog_tls_dir) if args.txlog_tls_dir else ""
        plan.save()
    supervisor = lc.Supervisor(plan, detach=args.detach)
    supervisor.start_all()
    if not lc.wait_until_serving(plan, timeout_s=60):
        print("the cluster did not elect a primary in 60 s; see the logs in "
              f"{plan.path('logs')}", file=sys.stderr)
        supervisor.stop_all()
        return 1
    endpoint = next(n for n in plan.nodes if n.kind == "endpoint")
    print(f"memdb cluster is up: 3 zones (a, b, c), {plan.shards} shard(s), data in {plan.directory}")
    print(f"  connect:        redis-cli -p {endpoint.port}")
    print(f"  endpoint:       {endpoint.address} (always reaches the current primary)")
    for node in plan.by_kind("data"):
        print(f"  {node.name:<14}  {node.address}  zone {node.zone}  {node.shard}")
    print(f"  txlog:          {', '.join(plan.txlog_addresses())}")
    if plan.grpc_tls_dir:
        print(f"  TLS:            gRPC and RESP, certificates from {plan.grpc_tls_dir}")
        for node in [endpoint] + plan.by_kind("data"):
            print(f"  {node.name:<14}  RESP over TLS on {lc.HOST}:{plan.tls_port(node)}")
    if plan.txlog_tls_dir:
        print(f"  txlog TLS:      mutual, certificates from {plan.txlog_tls_dir}")
    print(f"  status:         memdb cluster status --dir {args.dir}")
    if args.detach:
        print(f"  stop:           memdb cluster down --dir {args.dir}")
        return 0
    print("Ctrl-C stops every process.")
    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop:
        time.sleep(0.2)
    print("stopping...")
    lc.stop_pids(plan)          # includes processes `memdb chaos restart` started
    supervisor.stop_all()
    return 0


def _existing_plan(directory: str) -> lc.ClusterPlan:
    plan = lc.ClusterPlan.load(directory)
    if plan is None:
        raise SystemExit(f"no cluster in {directory}")
    return plan


def cluster_status(args: argparse.Namespace) -> int:
    plan = _existing_plan(args.dir)
    status = lc.node_status(plan)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    cols = ("name", "zone", "kind", "shard", "role", "host", "port", "pid", "alive", "applied_index", "lag",
            "fsync_ms", "commit_ms", "loop_max_ms", "log_first", "snapshot")
    rows = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in status["nodes"]]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    print(f"endpoint: {status['endpoint']['host']}:{status['endpoint']['port']}")
    print(f"faults: {chaos.describe(status['faults'])}")
    return 0


def cluster_down(args: argparse.Namespace) -> int:
    plan = _existing_plan(args.dir)
    stopped = lc.stop_pids(plan)
    print(f"stopped {len(stopped)} process(es)")
    return 0


def cluster_failover(args: argparse.Namespace) -> int:
    """Planned failover of a shard: ask its primary to hand over (to --to, or to any caught-up replica)."""
    plan = _existing_plan(args.dir)
    nodes = [n for n in plan.by_kind("data") if n.shard == args.shard]
    primary = None
    for n in nodes:
        try:
            if lc.parse_info(lc.resp_command(n.address, "INFO", "replication")).get("role") == "master":
                primary = n
        except (OSError, ConnectionError):
            continue
    if primary is None:
        print(f"{args.shard} has no primary right now", file=sys.stderr)
        return 1
    command = ["FAILOVER"]
    if args.to:
        target = next((n for n in nodes if n.name == args.to), None)
        if target is None or target is primary:
            print(f"--to must name a replica of {args.shard}: {', '.join(n.name for n in nodes if n is not primary)}",
                  file=sys.stderr)
            return 1
        command += ["TO", lc.HOST, str(target.port)]
    try:
        lc.resp_command(primary.address, *command, timeout_s=10)
    except ConnectionError as exc:
        print(f"FAILOVER refused by {primary.name}: {exc}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for n in nodes:
            if n is primary:
                continue
            try:
                if lc.parse_info(lc.resp_command(n.address, "INFO", "replication")).get("role") == "master":
                    print(f"{args.shard}: {primary.name} handed over to {n.name}")
                    return 0
            except (OSError, ConnectionError):
                continue
        time.sleep(0.05)
    print("the failover did not complete in 10 s", file=sys.stderr)
    return 1


def chaos_command(args: argparse.Namespace) -> int:
    plan = _existing_plan(args.dir)
    try:
        if args.action == "kill":
            print(f"killed: {', '.join(chaos.kill(plan, args.target)) or 'nothing was running'}")
        elif args.action == "restart":
            print(f"started: {', '.join(chaos.restart(plan, args.target)) or 'everything was running'}")
        elif args.action == "pause":
            print(f"paused: {', '.join(chaos.pause(plan, args.target)) or 'nothing was running'}")
        elif args.action == "partition":
            chaos.partition(plan, args.zone, args.other)
            print(f"faults: {chaos.describe(chaos.read_faults(plan))}")
        elif args.action == "latency":
            chaos.latency(plan, args.rtt, args.jitter)
            print(f"faults: {chaos.describe(chaos.read_faults(plan))}")
        elif args.action == "heal":
            resumed = chaos.heal(plan)["resumed"]
            print("healed: partitions and latency removed" + (f"; resumed {', '.join(resumed)}" if resumed else ""))
    except chaos.ChaosError as exc:
        print(f"memdb chaos: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memdb")
    sub = parser.add_subparsers(dest="area", required=True)
    cluster = sub.add_parser("cluster", help="run a local three-zone cluster")
    csub = cluster.add_subparsers(dest="action", required=True)
    up = csub.add_parser("up", help="start (or restart) the cluster")
    up.add_argument("--dir", default="memdb-data")
    up.add_argument("--base-port", type=int, default=None)
    up.add_argument("--shards", type=int, default=None)
    up.add_argument("--detach", action="store_true", help="return once every shard serves writes")
    up.add_argument("--no-zone-proxies", action="store_true",
                    help="connect zones directly (faster; `memdb chaos` network faults then do nothing)")
    up.add_argument("--snapshot-every", type=int, default=lc.SNAPSHOT_EVERY_ENTRIES,
                    help="replicas snapshot the shard into DIR/snapshots every this many applied writes (the "
                         "primary, after twice as many without one), then trim the log; 0: never, so the log is "
                         "never trimmed (a new cluster only; default %(default)s)")
    up.add_argument("--grpc-tls-dir", default=None,
                    help="serve the data nodes' gRPC API over TLS, and RESP over TLS (endpoint: base port + 120, "
                         "data nodes: port + 111), with "
                         "server.crt/server.key from this directory (and require client certificates signed by its "
                         "client-ca.crt, if present)")
    up.add_argument("--txlog-tls-dir", default=None,
                    help="every process talks to the txlog (and txlog nodes to each other) over mutual TLS with "
                         "ca.crt, node.crt and node.key from this directory (node.crt for server and client auth)")
    up.set_defaults(func=cluster_up)
    status = csub.add_parser("status", help="every node's role, ports, pid and progress")
    status.add_argument("--dir", default="memdb-data")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cluster_status)
    down = csub.add_parser("down", help="stop every process of the cluster")
    down.add_argument("--dir", default="memdb-data")
    down.set_defaults(func=cluster_down)
    failover = csub.add_parser("failover", help="planned failover: the primary hands its shard to a replica")
    failover.add_argument("--dir", default="memdb-data")
    failover.add_argument("--shard", default="shard0")
    failover.add_argument("--to", default=None, help="the data node to hand over to (default: any replica)")
    failover.set_defaults(func=cluster_failover)
    chaos_parser = sub.add_parser("chaos", help="break zones and heal them (the zone simulator)")
    chsub = chaos_parser.add_subparsers(dest="action", required=True)
    for name, help_text in (("kill", "SIGKILL a node or every node of a zone"),
                            ("restart", "start a killed node (or zone) again; resume a paused one"),
                            ("pause", "SIGSTOP a node or a zone")):
        p = chsub.add_parser(name, help=help_text)
        p.add_argument("target", help="a node name (see `memdb cluster status`) or zone-a / zone-b / zone-c")
    p = chsub.add_parser("partition", help="cut traffic between a zone and the others (or one other zone)")
    p.add_argument("zone")
    p.add_argument("other", nargs="?")
    p = chsub.add_parser("latency", help="inter-zone round-trip delay, e.g. 2ms")
    p.add_argument("rtt")
    p.add_argument("--jitter", default=None)
    chsub.add_parser("heal", help="remove partitions and latency, resume paused nodes")
    for p in chsub.choices.values():
        p.add_argument("--dir", default="memdb-data")
        p.set_defaults(func=chaos_command)
    args = parser.parse_args(argv)
    if args.func is cluster_up:
        args.explicit_layout = args.base_port is not None or args.shards is not None
        args.base_port = 7000 if args.base_port is None else args.base_port
        args.shards = 1 if args.shards is None else args.shards
    try:
        return args.func(args)
    except BrokenPipeError:
        # `memdb cluster status | head`: the reader left; say nothing more (as Unix tools do), and do not let the
        # interpreter's final flush of stdout raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
