"""memdb's client library over the data nodes' gRPC API (proto/memdb.proto): `Client` (sync, thread-safe) and
`AsyncClient` (asyncio), with redis-py's method names and return types.

    from memdb.client import Client
    db = Client(["10.0.0.1:7050", "10.0.0.2:7050"])        # gRPC ports of any data nodes (seeds)
    db.set("greeting", "hello", ex=60)                       # True
    db.get("greeting")                                       # b"hello"

Routing: the client fetches the Topology, sends each command to the primary of its key's hash slot (keys of one
multi-key command must share a slot, else CrossSlotError), and refreshes the topology on MOVED, on lost
connections and on READONLY/TRYAGAIN/CLUSTERDOWN replies (a failover), retrying within the call's deadline.

Exactly-once writes, and their bound: each client has a random client_id and numbers its writes (client_seq);
every retry of a write reuses its number, so a write retried after a failover or a lost reply is applied once and
returns the first reply. The guarantee holds while the server still remembers the number:
  * the server keeps the replies of each client's last 256 writes. The client keeps fewer than 128 writes in flight
    (memdb.client.aio.WRITE_WINDOW), so a retry always falls inside that window; if a retry ever finds its number
    forgotten the server refuses it (RetryWindowError: not applied twice, but the outcome is unknown);
  * the server remembers at most 100,000 clients, least recently active forgotten first. So the client never
    retries a request after its deadline (timeout=, default 10 s): the call raises TimeoutError instead ("may or
    may not have been applied"), and the application decides. Do not re-send such a write by hand expecting
    deduplication: a new call gets a new number.
Reads are retried freely. A command the client's command table does not know is sent once, never retried.

Replica reads: Client(read_from="replica", zone="b") reads from replicas (zone-local first) with min_index = the
index of this client's last write on that shard, so a read always sees the client's own writes; read_from="primary"
(default) is linearizable.

TLS: tls=True (system roots) or root_certificates=/private_key=/certificate_chain= make the channels use
grpc.ssl_channel_credentials. The data nodes serve gRPC without TLS today, so this only matters behind a
TLS-terminating proxy until the server gains TLS.

Transactions (transaction(func, *watches), pipeline(transaction=True)) need the server to keep MULTI/WATCH state
for the life of a gRPC Pipeline stream; where it does not, they raise NotSupported (never a half-applied MULTI).
"""
from memdb.client.aio import AsyncClient, AsyncPipeline
from memdb.client.exceptions import (ClusterDownError, ConnectionError, CrossSlotError, DataError, ExecAbortError,
                                     MemdbError, MovedError, NotSupported, ReadOnlyError, ResponseError,
                                     RetryWindowError, TimeoutError, TryAgainError, WatchError, WrongTypeError)
from memdb.client.sync import Client, Pipeline

__all__ = ["AsyncClient", "AsyncPipeline", "Client", "Pipeline", "MemdbError", "ResponseError", "WrongTypeError",
           "ReadOnlyError", "TryAgainError", "ClusterDownError", "CrossSlotError", "MovedError", "ExecAbortError",
           "WatchError", "NotSupported", "RetryWindowError", "TimeoutError", "ConnectionError", "DataError"]
