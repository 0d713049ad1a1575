"""RESP2/RESP3 at the edge: `RequestParser` turns client bytes into argument lists, `encode` turns reply values
(memdb/commands/spec.py) into bytes. No I/O here; memdb/server.py owns the sockets."""
from memdb.protocol.encoder import encode, encode_error, encode_into
from memdb.protocol.parser import (DEFAULT_MAX_BULK_LEN, DEFAULT_MAX_MULTIBULK_LEN, PROTO_INLINE_MAX_SIZE,
                                   ProtocolError, RequestParser, split_inline)

__all__ = ["encode", "encode_error", "encode_into", "RequestParser", "ProtocolError", "split_inline",
           "DEFAULT_MAX_BULK_LEN", "DEFAULT_MAX_MULTIBULK_LEN", "PROTO_INLINE_MAX_SIZE"]
