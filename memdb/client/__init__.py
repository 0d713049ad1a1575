"""memdb's client library over the data nodes' gRPC API (proto/memdb.proto): `Client` (sync, thread-safe) and
`AsyncClient` (asyncio), with redis-py's method names and return types.

    from memdb.client import Client
    db = Client(["10.0.0.1:7050", "10.0.0.2:7050"])        # gRPC ports of any data nodes (seeds)
    db.set("greeting", "hello", ex=60)                       # True
    db.get("greeting")                                       # b"hello"

Routing: the client fetches the Topology, sends each command to the primary of its key's hash slot (keys of one
multi-key command must share a slot, else CrossSlotError), and refreshes the topology on MOVED, on lost
connections and on READONLY/TRYAGAIN/CLUSTERDOWN replies (a failover, a deposed primary), retrying within the
call's deadline. Over gRPC, MOVED names the owner's gRPC address; if the refreshed topology still disagrees, the
retry goes where MOVED says.

Deadlines: every call has one (timeout=, default 10 s, for the client; execute(..., timeout=) or
client.with_timeout(s).get(...) for one call). Past it the call raises TimeoutError; nothing is retried after it.

Exactly-once writes, and their bound: each client has a random client_id and numbers its writes (client_seq);
every retry of a write reuses its number, so a write retried after a failover or a lost reply is applied once and
returns the first reply. The guarantee holds while the server still remembers the number:
  * the server keeps the replies of each client's last 256 writes. The client keeps fewer than 128 writes in flight
    (memdb.client.aio.WRITE_WINDOW), so a retry always falls inside that window; if a retry ever finds its number
    forgotten the server refuses it (RetryWindowError: not applied twice, but the outcome is unknown);
  * the server remembers at most 100,000 clients, least recently active forgotten first. A forgotten client's
    retry is not recognised and would be applied a second time. The client bounds this by never retrying after the
    call's deadline (timeout=, default 10 s): a duplicate needs more than 100,000 other clients to write between a
    write's first application and its retry, all within that deadline. Past the deadline the call raises
    TimeoutError ("may or may not have been applied") and the application decides; do not re-send such a write
    by hand expecting deduplication: a new call gets a new number.
Writes include EVAL/EVALSHA/FCALL/SCRIPT LOAD (they go through the log). Reads are retried freely. PUBLISH, and
a command the client's command table does not know, are sent once, never retried.

Replica reads: Client(read_from="replica", zone="b") reads from replicas (zone-local first) with min_index = the
index of this client's last write on that shard, so a read always sees the client's own writes; read_from="primary"
(default) is linearizable.

TLS: data nodes serve gRPC over TLS with --grpc-tls-cert/--grpc-tls-key (and require client certificates with
--grpc-tls-ca). tls=True (system roots) or root_certificates= (PEM bytes or a file path) make the client use TLS;
private_key= and certificate_chain= add a client certificate (mutual TLS); tls_server_name= overrides the name
checked in the nodes' certificates. A TLS mismatch (plaintext against TLS, an untrusted certificate, a missing
client certificate) fails at once with a ConnectionError that says which.

Transactions (transaction(func, *watches), pipeline(transaction=True)) run WATCH/MULTI/EXEC on a stream of their
own to the primary of the watched keys' slot; transaction() runs func again when a watched key changed.
"""
from memdb.client.aio import AsyncClient, AsyncPipeline
from memdb.client.exceptions import (ClusterDownError, ConnectionError, CrossSlotError, DataError, ExecAbortError,
                                     MemdbError, MovedError, NoScriptError, NotSupported, ReadOnlyError,
                                     ResponseError, RetryWindowError, TimeoutError, TryAgainError, WatchError,
                                     WrongTypeError)
from memdb.client.sync import Client, Pipeline

__all__ = ["AsyncClient", "AsyncPipeline", "Client", "Pipeline", "MemdbError", "ResponseError", "WrongTypeError",
           "ReadOnlyError", "TryAgainError", "ClusterDownError", "CrossSlotError", "MovedError", "ExecAbortError",
           "NoScriptError", "WatchError", "NotSupported", "RetryWindowError", "TimeoutError", "ConnectionError",
           "DataError"]
