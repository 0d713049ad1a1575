"""The txlog client's batching decisions (txlog/client.py), without a log: `_linger` is a pure function of what is
queued and what was last answered."""
from __future__ import annotations

from txlog.client import LogClient


def _client_after_answer(answered_at: float, queued_then: int, answered_items: int) -> LogClient:
    client = LogClient(["127.0.0.1:1"], "shard0")
    client._answered_at = answered_at
    client._expected_items = queued_then + answered_items
    return client


def _queue(client: LogClient, items: int) -> None:
    client._queue.append(([b"x"] * items, 0, None, 100.0))      # _linger looks at the items only


def test_a_small_batch_waits_for_the_writers_just_answered():
    client = _client_after_answer(answered_at=10.0, queued_then=12, answered_items=38)
    _queue(client, 12)
    assert client._linger(10.0002) == 10.0 + LogClient.LINGER_S     # 12 of the 50 expected: hold
    _queue(client, 37)
    assert client._linger(10.0004) is not None                      # 49 of 50: still hold
    _queue(client, 1)
    assert client._linger(10.0005) is None                          # all 50 are here: send


def test_the_hold_is_bounded_and_never_applies_to_a_lone_writer():
    client = _client_after_answer(answered_at=10.0, queued_then=12, answered_items=38)
    _queue(client, 12)
    assert client._linger(10.0 + LogClient.LINGER_S) is None        # the writers did not come back in time
    lone = _client_after_answer(answered_at=10.0, queued_then=0, answered_items=1)
    _queue(lone, 1)
    assert lone._linger(10.0001) is None                            # one writer, back: no wait at all


def test_nothing_is_held_while_a_batch_is_in_flight_or_a_claim_waits():
    client = _client_after_answer(answered_at=10.0, queued_then=0, answered_items=50)
    assert client._linger(10.0001) is None                          # nothing queued: nothing to hold
    _queue(client, 1)
    client._special.append(object())
    assert client._linger(10.0001) is None                          # a claim goes at once
    client._special.clear()
    client._inflight.append(object())
    assert client._linger(10.0001) is None                          # the in-flight limit decides, not us
