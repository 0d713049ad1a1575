"""Every row of memdb's command table against a real redis-server's COMMAND INFO: arity, flags, key positions
(first/last/step) and ACL categories, subcommands included."""
import pytest

from memdb.commands.spec import Flag
from memdb.commands.table import COMMAND_TABLE, all_specs
from tests.differential.harness import oracle_server

# Rows memdb has that Redis 7.0 doesn't (newer Redis commands that clients send).
NOT_IN_REDIS_7_0 = {"client|setinfo"}


@pytest.fixture(scope="module")
def redis_info():
    server = oracle_server()
    if server is None:
        pytest.skip("redis-server is not installed at /usr/bin/redis-server (run `make test-deps`)")
    conn = server.connect()
    try:
        reply = conn.call("COMMAND", "INFO", *COMMAND_TABLE).value
    finally:
        conn.close()
    info = {}
    for entry in reply:
        if entry is None:
            continue
        rows = [entry] + list(entry[9])
        for row in rows:
            name, arity, flags, first, last, step, acl = row[:7]
            info[name.decode()] = (arity, {f.decode() for f in flags}, first, last, step, tuple(a.decode() for a in acl))
    return info


def _ids():
    return [spec.name for spec in all_specs()]


@pytest.mark.parametrize("name", _ids())
def test_row_matches_redis(redis_info, name):
    spec = next(s for s in all_specs() if s.name == name)
    if name in NOT_IN_REDIS_7_0:
        pytest.skip(f"{name} is not a Redis 7.0 command")
    assert name in redis_info, f"redis-server does not know {name!r}"
    arity, flags, first, last, step, acl = redis_info[name]
    assert spec.arity == arity, "arity"
    # may_replicate is hidden from COMMAND INFO by Redis itself (server.c addReplyCommandFlags)
    assert {f.value for f in spec.flags if f not in (Flag.CONNECTION, Flag.MAY_REPLICATE)} == flags, "flags"
    assert (spec.first_key, spec.last_key, spec.key_step) == (first, last, step), "first/last/step"
    if spec.acl_categories:
        assert set(spec.acl_categories) == set(acl), "ACL categories"


def test_subcommands_complete(redis_info):
    """A container's subcommands known to Redis are all in memdb's table (or none are, if memdb has none)."""
    for spec in COMMAND_TABLE.values():
        if not spec.subcommands:
            continue
        ours = {s.name for s in spec.subcommands}
        theirs = {n for n in redis_info if n.startswith(spec.name + "|")}
        assert ours - NOT_IN_REDIS_7_0 <= theirs


def test_names_are_lower_case_and_unique():
    names = [s.name for s in all_specs()]
    assert len(names) == len(set(names))
    assert all(n == n.lower() for n in names)
