"""A canonical, comparable form of a keyspace: from memory (replay) or read over RESP (a running node)."""
from __future__ import annotations

from memdb.keyspace import Keyspace, type_name


def _text(b: bytes) -> str:
    return b.decode("latin-1")


def canonical_value(kind: str, value) -> object:
    if kind == "string":
        return _text(bytes(value))
    if kind == "hash":
        return sorted([_text(k), _text(v)] for k, v in value.items())
    if kind == "list":
        return [_text(x) for x in value]
    if kind == "set":
        return sorted(_text(x) for x in value)
    if kind == "zset":
        scores = value.scores if hasattr(value, "scores") else value
        return sorted([_text(m), repr(float(s))] for m, s in scores.items())
    return repr(value)


def dump_keyspace(keyspace: Keyspace, now_ms: int | None) -> dict:
    out = {}
    for db in keyspace.dbs:
        for key, value in db.data.items():
            if now_ms is not None and db.is_expired(key, now_ms):
                continue
            kind = type_name(value)
            out[f"{db.index}:{_text(key)}"] = [kind, canonical_value(kind, value), db.expires.get(key)]
    return out


def dump_over_resp(client) -> dict:
    """The same form, read from a node with redis-py (db 0 only; expiry as the absolute PEXPIRETIME)."""
    out = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = {m: s for m, s in client.zrange(key, 0, -1, withscores=True)}
        else:
            value = None
        deadline = client.execute_command("PEXPIRETIME", key)
        out[f"0:{_text(key)}"] = [kind, canonical_value(kind, value), deadline if deadline > 0 else None]
    return out
