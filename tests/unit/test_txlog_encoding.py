"""The txlog's hand-encoded RaftBatch and TailResponse frames (txlog/server.py) parse, with the generated classes,
to exactly the messages the generated classes would have built, for any field values and entry sizes."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from txlog import wire
from txlog.fencing import decode_record
from txlog.generated import txlog_pb2 as pb
from txlog.raft.core import Entry, Message, MessageType
from txlog.server import _frame_parts, _raft_batch_parts, _tail_response_parts, _to_proto, _varint

u64 = st.integers(min_value=0, max_value=2 ** 64 - 1)
names = st.text(min_size=0, max_size=12)
record_bytes = st.one_of(
    st.just(b""),                                                    # Raft's own empty entry: a NOOP record
    st.builds(lambda kind, epoch, items: pb.LogRecord(kind=kind, epoch=epoch, items=items).SerializeToString(),
              st.sampled_from([pb.DATA, pb.LEADERSHIP, pb.TRIM]), u64, st.lists(st.binary(max_size=300), max_size=4)),
    st.binary(min_size=120, max_size=70_000).map(
        lambda blob: pb.LogRecord(kind=pb.DATA, items=[blob]).SerializeToString()),   # past one varint byte
)
entries = st.lists(st.builds(Entry, u64, u64, record_bytes), max_size=4)
messages = st.builds(
    Message, st.sampled_from(list(MessageType)), names, names, u64, log_term=u64, index=u64, entries=entries.map(tuple),
    commit=u64, reject=st.booleans(), reject_hint=u64, last_index=u64, recovering=st.booleans())


def _payload(parts: list[bytes], kind: int) -> bytes:
    """The frame's payload, checking its header against what follows it."""
    data = b"".join(parts)
    length, got_kind = wire.HEADER.unpack_from(data)
    assert got_kind == kind and length == len(data) - wire.HEADER.size
    return data[wire.HEADER.size:]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, messages), max_size=4))
def test_raft_batch_parses_to_the_generated_message(batch: list[tuple[str, Message]]) -> None:
    parts, size = _raft_batch_parts(batch)
    assert size == sum(map(len, parts))
    payload = _payload(_frame_parts(wire.Kind.RAFT_BATCH, parts, size), wire.Kind.RAFT_BATCH)
    expected = pb.RaftBatch(messages=[_to_proto(name, m) for name, m in batch])
    assert pb.RaftBatch.FromString(payload) == expected


@settings(max_examples=300, deadline=None)
@given(entries, u64, u64)
def test_tail_response_parses_to_the_generated_message(tail: list[Entry], commit: int, first: int) -> None:
    parts, size = _tail_response_parts(tail, commit, first)
    assert size == sum(map(len, parts))
    payload = _payload(_frame_parts(wire.Kind.TAIL_RESPONSE, parts, size), wire.Kind.TAIL_RESPONSE)
    expected = pb.TailResponse(entries=[pb.TailEntry(index=e.index, term=e.term, record=decode_record(e.data))
                                        for e in tail], commit_index=commit, first_index=first)
    assert pb.TailResponse.FromString(payload) == expected
    for got, e in zip(pb.TailResponse.FromString(payload).entries, tail):
        assert got.record.kind == (pb.NOOP if not e.data else decode_record(e.data).kind)


def test_large_payloads_are_written_in_pieces_without_copying_the_entry() -> None:
    data = bytes(1 << 20)
    parts = _frame_parts(wire.Kind.RAFT_BATCH, *_raft_batch_parts([("shard0", Message(
        MessageType.APPEND, "a", "b", 3, log_term=3, index=7, entries=(Entry(3, 8, data),)))]))
    assert any(part is data for part in parts)
    small = _frame_parts(wire.Kind.RAFT_BATCH, *_raft_batch_parts([("shard0", Message(
        MessageType.HEARTBEAT, "a", "b", 3))]))
    assert len(small) == 1                      # a small frame goes to the kernel as one buffer


def test_varint_matches_protobuf() -> None:
    for n in (0, 1, 127, 128, 300, 16383, 16384, 2 ** 32, 2 ** 63, 2 ** 64 - 1):
        assert _varint(n) == pb.TrimRequest(below_index=n).SerializeToString()[1:] or n == 0
    assert _varint(0) == b"\x00"
