"""MULTI/EXEC/WATCH on a real cluster: one log entry, applied atomically on every node; WATCH decided at apply."""
import threading

import pytest
import redis

from tests.integration.test_data_node import wait_converged


def test_exec_is_atomic_and_replicated(cluster):
    p = cluster.client(cluster.primary())
    pipe = p.pipeline(transaction=True)
    pipe.set("a", 1).incr("a").lpush("a", "x").get("a").rpush("l", 1, 2)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        pipe.execute()       # redis-py raises the first error; the other commands still ran, as in Redis
    assert p.get("a") == b"2" and p.lrange("l", 0, -1) == [b"1", b"2"]
    wait_converged(cluster, [b"a"])


def test_queue_errors_abort_exec(cluster):
    p = cluster.client(cluster.primary())
    conn = p.connection_pool.get_connection()
    conn.send_command("MULTI")
    assert conn.read_response() == b"OK"
    conn.send_command("SET", "x")                 # wrong arity: refused while queuing
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        conn.read_response()
    conn.send_command("SET", "y", "1")
    assert conn.read_response() == b"QUEUED"
    conn.send_command("EXEC")
    with pytest.raises(redis.ResponseError, match="Transaction discarded because of previous errors"):
        conn.read_response()
    p.connection_pool.release(conn)
    assert p.get("y") is None
    with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
        p.execute_command("EXEC")
    with pytest.raises(redis.ResponseError, match="DISCARD without MULTI"):
        p.execute_command("DISCARD")


def test_watch_aborts_when_the_key_changes(cluster):
    p = cluster.client(cluster.primary())
    other = cluster.client(cluster.primary())
    p.set("balance", 100)
    with p.pipeline(transaction=True) as pipe:
        pipe.watch("balance")
        assert int(pipe.get("balance")) == 100
        other.set("balance", 50)                  # a concurrent change after WATCH
        pipe.multi()
        pipe.set("balance", 90)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert p.get("balance") == b"50"
    with p.pipeline(transaction=True) as pipe:   # unchanged: applies
        pipe.watch("balance")
        pipe.multi()
        pipe.incrby("balance", 5)
        assert pipe.execute() == [55]


def test_concurrent_watch_increments_lose_nothing(cluster):
    """Optimistic-locking increments from several clients: every successful EXEC counts exactly once."""
    p = cluster.client(cluster.primary())
    p.set("counter", 0)
    successes = []

    def worker():
        c = cluster.client(cluster.primary())
        done = 0
        while done < 15:
            with c.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch("counter")
                    value = int(pipe.get("counter"))
                    pipe.multi()
                    pipe.set("counter", value + 1)
                    pipe.execute()
                    done += 1
                except redis.WatchError:
                    continue
        successes.append(done)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(successes) == 60
    assert p.get("counter") == b"60"
    wait_converged(cluster, [b"counter"])
