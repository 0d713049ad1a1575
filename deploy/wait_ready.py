"""Waits until the primary endpoint acknowledges a SET (used by `make compose-up`).

  python deploy/wait_ready.py [--port 7000] [--timeout 90]
Needs only the standard library, so any python3 on the host runs it.
"""
import argparse
import socket
import sys
import time


def set_once(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.settimeout(8)       # the endpoint holds a connection up to ~5 s while no primary is known
        s.sendall(b"*3\r\n$3\r\nSET\r\n$11\r\nmemdb:ready\r\n$1\r\n1\r\n")
        return s.recv(256)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=7000)
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < args.timeout:
        try:
            reply = set_once(args.port)
            if reply.startswith(b"+OK"):
                print(f"memdb is serving writes on 127.0.0.1:{args.port} "
                      f"(after {time.monotonic() - t0:.1f} s): redis-cli -p {args.port}")
                return 0
            last = reply.decode(errors="replace").strip()
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    print(f"the endpoint on 127.0.0.1:{args.port} did not acknowledge a SET in {args.timeout:.0f} s "
          f"(last: {last})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
