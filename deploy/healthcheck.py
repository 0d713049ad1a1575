"""Container healthchecks (copied into the image as /opt/memdb/healthcheck.py).

  python /opt/memdb/healthcheck.py data PORT     healthy when the data node answers PING
  python /opt/memdb/healthcheck.py txlog PORT    healthy when the txlog node answers its gRPC Status
  python /opt/memdb/healthcheck.py endpoint PORT healthy when the endpoint forwards a PING to a primary
Exit 0 = healthy, 1 = not.
"""
import socket
import sys


def ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.settimeout(2)
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64).startswith(b"+PONG")


def txlog_status(port: int) -> bool:
    import grpc
    from txlog.generated import txlog_pb2 as pb, txlog_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = pb_grpc.TxLogStub(channel).Status(pb.StatusRequest(), timeout=2)
    return bool(reply.node_id)


def main() -> int:
    kind, port = sys.argv[1], int(sys.argv[2])
    try:
        ok = txlog_status(port) if kind == "txlog" else ping(port)
    except Exception as exc:   # noqa: BLE001 - any failure is "unhealthy"
        print(f"{kind} on port {port}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
