"""txlog/fencing.py: epoch fencing, conditions and deduplication (pure, no I/O)."""
from txlog import fencing
from txlog.fencing import LogFencing, Verdict, decode_record
from txlog.generated import txlog_pb2 as pb


def record(kind=pb.DATA, epoch=0, writer="", seq=0, items=(b"x",)):
    return pb.LogRecord(kind=kind, epoch=epoch, writer_id=writer, batch_seq=seq, items=list(items))


def test_data_needs_the_current_epoch():
    f = LogFencing()
    assert f.decide(pb.DATA, 0, "", 0, None, 5).verdict is Verdict.PROPOSE
    d = f.decide(pb.DATA, 1, "", 0, None, 5)
    assert d.verdict is Verdict.STALE_EPOCH and d.epoch == 0


def test_leadership_needs_epoch_plus_one_and_its_condition():
    f = LogFencing()
    assert f.decide(pb.LEADERSHIP, 2, "", 0, None, 5).verdict is Verdict.STALE_EPOCH
    assert f.decide(pb.LEADERSHIP, 0, "", 0, None, 5).verdict is Verdict.STALE_EPOCH
    assert f.decide(pb.LEADERSHIP, 1, "", 0, 4, 5).verdict is Verdict.CONDITION_FAILED
    assert f.decide(pb.LEADERSHIP, 1, "", 0, 5, 5).verdict is Verdict.PROPOSE
    assert f.decide(pb.LEADERSHIP, 1, "", 0, None, 5).verdict is Verdict.PROPOSE


def test_a_proposed_claim_moves_the_tail_epoch_at_once():
    f = LogFencing()
    f.note_proposed(6, record(pb.LEADERSHIP, 1, "n1", 1))
    assert f.tail_epoch == 1 and f.applied_epoch == 0
    assert f.decide(pb.DATA, 0, "", 0, None, 6).verdict is Verdict.STALE_EPOCH      # deposed writer
    assert f.decide(pb.DATA, 1, "", 0, None, 6).verdict is Verdict.PROPOSE
    assert f.decide(pb.LEADERSHIP, 1, "n2", 1, 6, 6).verdict is Verdict.STALE_EPOCH  # a second claim of epoch 1
    f.apply(6, record(pb.LEADERSHIP, 1, "n1", 1))
    assert f.applied_epoch == 1


def test_a_trim_record_carries_the_epoch_for_a_log_that_lost_its_leaderships():
    """A node restarted after a trim applies only what is left of the log: the TRIM record gives it the epoch
    (without it, every claim and write would be refused as stale, for good)."""
    restarted = LogFencing()
    restarted.apply(1201, pb.LogRecord(kind=pb.TRIM, trim_below=1000, epoch=7))
    restarted.apply(1202, record(pb.DATA, 7, "w", 9))
    assert restarted.applied_epoch == 7
    restarted.become_leader([])
    assert restarted.decide(pb.DATA, 7, "", 0, None, 1202).verdict is Verdict.PROPOSE
    assert restarted.decide(pb.LEADERSHIP, 8, "", 0, 1202, 1202).verdict is Verdict.PROPOSE
    assert restarted.decide(pb.DATA, 6, "", 0, None, 1202).verdict is Verdict.STALE_EPOCH
    uncommitted = LogFencing()           # ... and the same when the TRIM is still in the uncommitted tail
    uncommitted.become_leader([(1201, pb.LogRecord(kind=pb.TRIM, trim_below=1000, epoch=7))])
    assert uncommitted.tail_epoch == 7


def test_data_condition():
    f = LogFencing()
    assert f.decide(pb.DATA, 0, "", 0, 3, 4).verdict is Verdict.CONDITION_FAILED
    assert f.decide(pb.DATA, 0, "", 0, 4, 4).verdict is Verdict.PROPOSE


def test_duplicates_pending_and_applied():
    f = LogFencing()
    f.note_proposed(3, record(writer="w", seq=1))
    d = f.decide(pb.DATA, 0, "w", 1, None, 3)
    assert d.verdict is Verdict.DUPLICATE and d.index == 3
    f.apply(3, record(writer="w", seq=1))
    assert f.decide(pb.DATA, 0, "w", 1, None, 3).index == 3
    assert f.decide(pb.DATA, 0, "w", 2, None, 3).verdict is Verdict.PROPOSE
    assert f.decide(pb.DATA, 0, "other", 1, None, 3).verdict is Verdict.PROPOSE
    # a duplicate is recognised even with a stale epoch (the retry of an acknowledged batch learns its index)
    f.apply(4, record(pb.LEADERSHIP, 1, "n", 1))
    assert f.decide(pb.DATA, 0, "w", 1, None, 4).verdict is Verdict.DUPLICATE


def test_dedup_window_forgets_the_index_but_not_the_fact():
    f = LogFencing()
    n = fencing.DEDUP_WINDOW_PER_WRITER + 10
    for seq in range(1, n + 1):
        f.apply(seq, record(writer="w", seq=seq))
    old = f.decide(pb.DATA, 0, "w", 1, None, n)
    assert old.verdict is Verdict.DUPLICATE and old.index == 0     # known to be in the log, index forgotten
    assert f.decide(pb.DATA, 0, "w", n, None, n).index == n
    assert f.decide(pb.DATA, 0, "w", n + 1, None, n).verdict is Verdict.PROPOSE


def test_writers_beyond_the_limit_are_forgotten_oldest_first(monkeypatch):
    monkeypatch.setattr(fencing, "MAX_WRITERS", 3)
    f = LogFencing()
    for i, w in enumerate(["a", "b", "c", "d"], start=1):
        f.apply(i, record(writer=w, seq=1))
    assert f.decide(pb.DATA, 0, "a", 1, None, 4).verdict is Verdict.PROPOSE
    assert f.decide(pb.DATA, 0, "d", 1, None, 4).index == 4


def test_become_leader_rebuilds_the_tail_view():
    f = LogFencing()
    f.apply(1, record(pb.LEADERSHIP, 1, "n", 1))
    f.note_proposed(2, record(pb.LEADERSHIP, 2, "m", 1))      # proposed by an old leader, then lost
    f.become_leader([(2, record(writer="w", seq=7, epoch=1))])   # what the new leader's log really holds
    assert f.tail_epoch == 1
    assert f.decide(pb.DATA, 0, "m", 1, None, 2).verdict is Verdict.STALE_EPOCH   # not a duplicate any more
    assert f.decide(pb.DATA, 1, "w", 7, None, 2).index == 2


def test_decode_record_reads_raft_noops():
    assert decode_record(b"").kind == pb.NOOP
    r = record(writer="w", seq=3)
    assert decode_record(r.SerializeToString()) == r
