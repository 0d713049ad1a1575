"""memdb.commands.dispatch.lookup: the spelling cache answers exactly as the full lookup does."""
import pytest

from memdb.commands import dispatch
from memdb.commands.spec import CommandError


def test_cached_spelling_still_checks_arity_and_case():
    assert dispatch.lookup([b"GeT", b"k"]).name == "get"
    assert b"GeT" in dispatch._BY_SPELLING                 # cached after a valid call
    assert dispatch.lookup([b"GeT", b"other"]).name == "get"
    with pytest.raises(CommandError, match="wrong number of arguments for 'get' command"):
        dispatch.lookup([b"GeT"])                          # cached, but the arity is checked every time
    with pytest.raises(CommandError, match="unknown command 'gett'"):
        dispatch.lookup([b"gett", b"k"])


def test_container_commands_are_not_cached_by_name():
    assert dispatch.lookup([b"object", b"encoding", b"k"]).name == "object|encoding"
    assert dispatch.lookup([b"object", b"freq", b"k"]).name == "object|freq"
    assert b"object" not in dispatch._BY_SPELLING
    with pytest.raises(CommandError, match="unknown subcommand 'nope'"):
        dispatch.lookup([b"object", b"nope"])


def test_non_bytes_names_take_the_full_path():
    assert dispatch.lookup([bytearray(b"SET"), b"k", b"v"]).name == "set"
    assert dispatch.lookup([memoryview(b"get"), b"k"]).name == "get"
