"""Functions: FUNCTION LOAD/DELETE/LIST/DUMP/RESTORE/FLUSH/STATS/KILL/HELP, FCALL, FCALL_RO (Redis 7.0 functions.c,
function_lua.c). The Lua side (sandbox, conversions, running) is memdb/commands/scripting.py.

Libraries are replicated state (`ScriptingState.libraries`), changed only by logged commands (FUNCTION LOAD,
DELETE, FLUSH, RESTORE carry the write flag; FCALL carries may_replicate), so every node has the same libraries
and FCALL works on a new primary after failover. Each process compiles a library's code into its own VM on first
use (`LuaVM.libraries`, keyed by code).

memdb-specific (documented divergences):
  - FUNCTION DUMP writes Redis's payload (RDB_OPCODE_FUNCTION2 + the code as an RDB string per library, RDB
    version 10, CRC64; memdb/rdb.py), so payloads move between memdb and Redis 7.0 both ways. With several
    libraries memdb writes them sorted by name (Redis: dict order), so the bytes can differ while the content
    is the same.
  - FUNCTION LIST returns libraries sorted by name and functions in registration order (Redis: dict order, which
    it documents as unspecified).
  - FUNCTION KILL always answers NOTBUSY (scripts run to completion inside one handler call; a runaway function
    is stopped by the instruction limit, see scripting.py).
"""
from __future__ import annotations

import re
from typing import Any

from memdb import rdb
from memdb.commands import messages
from memdb.commands._typeutil import numkeys_finder
from memdb.commands.declare import command
from memdb.commands.scanning import glob_match
from memdb.commands.scripting import FunctionInfo, Library, ScriptingState, state_of
from memdb.commands.args import is_int
from memdb.commands.spec import OK, CommandError, Context, Map, SetReply

RDB_OPCODE_FUNCTION2 = 245
RDB_OPCODE_FUNCTION_PRE_GA = 246

_NAME_RE = re.compile(r"[A-Za-z0-9_]+\Z")

FUNCTION_HELP = [
    b"FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"LOAD [REPLACE] <FUNCTION CODE>",
    b"    Create a new library with the given library name and code.",
    b"DELETE <LIBRARY NAME>",
    b"    Delete the given library.",
    b"LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    b"    Return general information on all the libraries:",
    b"    * Library name",
    b"    * The engine used to run the Library",
    b"    * Library description",
    b"    * Functions list",
    b"    * Library code (if WITHCODE is given)",
    b"    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    b"STATS",
    b"    Return information about the current function running:",
    b"    * Function name",
    b"    * Command used to run the function",
    b"    * Duration in MS that the function is running",
    b"    If no function is running, return nil",
    b"    In addition, returns a list of available engines.",
    b"KILL",
    b"    Kill the current running function.",
    b"FLUSH [ASYNC|SYNC]",
    b"    Delete all the libraries.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the libraries.",
    b"    * SYNC: Synchronously flush the libraries.",
    b"DUMP",
    b"    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE "
    b"command",
    b"RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    b"    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    b"    control how to handle existing libraries (default APPEND):",
    b"    * FLUSH: delete all existing libraries.",
    b"    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    b"    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    b"      libraries with the new libraries (notice that even on this option there is a chance of failure",
    b"      in case of functions name collision with another library).",
    b"HELP",
    b"    Prints this help.",
]


# -- compiling a library ---------------------------------------------------------------------------------------------
def _parse_metadata(code: bytes) -> tuple[str, int]:
    """functionExtractLibMetaData: the library name from '#!lua name=<name>', and where the body starts."""
    if not code.startswith(b"#!"):
        raise CommandError(messages.FUNCTION_MISSING_METADATA)
    end = code.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid metadata")
    parts = code[:end].split()
    engine = parts[0][2:] if parts else b""
    if engine.lower() != b"lua":
        raise CommandError(f"ERR Engine '{engine.decode('utf-8', 'replace')}' not found")
    name = None
    for part in parts[1:]:
        if part.startswith(b"name="):
            name = part[5:].decode("utf-8", "surrogateescape")
        else:
            raise CommandError(f"ERR Invalid metadata value given: {part.decode('utf-8', 'surrogateescape')}")
    if name is None:
        raise CommandError(messages.FUNCTION_NAME_NOT_GIVEN)
    if not _NAME_RE.match(name):
        raise CommandError(messages.FUNCTION_LIBRARY_NAME_INVALID)
    return name, end


def _compile_library(state: ScriptingState, code: bytes) -> Library:
    name, end = _parse_metadata(code)
    registered = state.vm.load_library(code, end)
    functions = {fname: FunctionInfo(fname, flags, description) for fname, _, flags, description in registered}
    state.vm.libraries[code] = {fname: callback for fname, callback, _, _ in registered}
    return Library(name, code, functions)


def _install(state: ScriptingState, libraries: list[Library], replace: bool, exists_message) -> None:
    """Add libraries (all or nothing): a name collision fails unless replace; a function name owned by another
    library always fails."""
    for lib in libraries:
        if lib.name in state.libraries and not replace:
            raise CommandError(exists_message(lib.name))
    replaced = {lib.name for lib in libraries if lib.name in state.libraries}
    owners = {fname: lname for fname, lname in state.functions.items() if lname not in replaced}
    for lib in libraries:
        for fname in lib.functions:
            if fname.lower() in owners:        # function names are case-insensitive (Redis's dict type)
                raise CommandError(f"ERR Function {fname} already exists")
            owners[fname.lower()] = lib.name
    for lib in libraries:
        state.libraries[lib.name] = lib
    state.functions = {fname: lname for fname, lname in owners.items()}


def _callback(state: ScriptingState, lib: Library, fname: str) -> Any:
    compiled = state.vm.libraries.get(lib.code)
    if compiled is None:                       # e.g. a new primary after failover: compile from the replicated code
        _compile_library(state, lib.code)
        compiled = state.vm.libraries[lib.code]
    return compiled[fname]


# -- FUNCTION --------------------------------------------------------------------------------------------------------
def function_load(ctx: Context, args: list[bytes]) -> Any:
    replace = False
    for arg in args[2:-1]:
        if arg.upper() == b"REPLACE":
            replace = True
        else:
            raise CommandError(f"ERR Unknown option given: {arg.decode('utf-8', 'surrogateescape')}")
    code = bytes(args[-1])
    state = state_of(ctx)
    name, _ = _parse_metadata(code)
    if name in state.libraries and not replace:
        raise CommandError(f"ERR Library '{name}' already exists")
    lib = _compile_library(state, code)
    _install(state, [lib], replace, lambda n: f"ERR Library '{n}' already exists")
    return lib.name.encode()


def function_delete(ctx: Context, args: list[bytes]) -> Any:
    state = state_of(ctx)
    name = args[2].decode("utf-8", "surrogateescape")
    if name not in state.libraries:
        raise CommandError(messages.FUNCTION_LIBRARY_NOT_FOUND)
    del state.libraries[name]
    state.functions = {f: lib for f, lib in state.functions.items() if lib != name}
    return OK


def function_flush(ctx: Context, args: list[bytes]) -> Any:
    if len(args) > 3 or (len(args) == 3 and args[2].upper() not in (b"SYNC", b"ASYNC")):
        raise CommandError(messages.FUNCTION_FLUSH_OPTION)
    state = state_of(ctx)
    state.libraries.clear()
    state.functions.clear()
    return OK


def function_list(ctx: Context, args: list[bytes]) -> Any:
    pattern = None
    with_code = False
    i = 2
    while i < len(args):
        option = args[i].upper()
        if option == b"WITHCODE" and not with_code:
            with_code = True
        elif option == b"LIBRARYNAME" and pattern is None:
            if i + 1 >= len(args):
                raise CommandError(messages.FUNCTION_LIBRARYNAME_NOT_GIVEN)
            pattern = bytes(args[i + 1])
            i += 1
        else:
            raise CommandError(f"ERR Unknown argument {args[i].decode('utf-8', 'surrogateescape')}")
        i += 1
    state = state_of(ctx)
    reply = []
    for name in sorted(state.libraries):
        lib = state.libraries[name]
        if pattern is not None and not glob_match(pattern, name.encode()):
            continue
        functions = [Map([(b"name", f.name.encode()), (b"description", f.description),
                          (b"flags", SetReply([flag.encode() for flag in f.flags]))])
                     for f in lib.functions.values()]
        items = [(b"library_name", name.encode()), (b"engine", b"LUA"), (b"functions", functions)]
        if with_code:
            items.append((b"library_code", lib.code))
        reply.append(Map(items))
    return reply


def function_stats(ctx: Context, args: list[bytes]) -> Any:
    state = state_of(ctx)
    engine = Map([(b"libraries_count", len(state.libraries)), (b"functions_count", len(state.functions))])
    return Map([(b"running_script", None), (b"engines", Map([(b"LUA", engine)]))])


def function_dump(ctx: Context, args: list[bytes]) -> Any:
    """functionsDumpCommand: rdbSaveFunctions + RDB version + CRC64."""
    state = state_of(ctx)
    body = b"".join(bytes((RDB_OPCODE_FUNCTION2,)) + rdb.encode_string(state.libraries[name].code)
                    for name in sorted(state.libraries))
    body += rdb.RDB_VERSION.to_bytes(2, "little")
    return body + rdb.crc64(body).to_bytes(8, "little")


def _parse_dump(payload: bytes) -> list[bytes]:
    """functionsRestoreCommand: verifyDumpPayload, then FUNCTION2 opcodes each followed by a library's code."""
    if not rdb.verify_payload(payload):
        raise CommandError(messages.DUMP_PAYLOAD_INVALID)
    reader = rdb.Reader(payload[:-10])
    codes = []
    try:
        while reader.pos < len(reader.data):
            opcode = reader.byte()
            if opcode == RDB_OPCODE_FUNCTION_PRE_GA:
                raise CommandError("ERR Pre-GA function format not supported")
            if opcode != RDB_OPCODE_FUNCTION2:
                raise CommandError("ERR given type is not a function")
            codes.append(reader.string())
    except rdb.BadPayload:
        raise CommandError(messages.RESTORE_BAD_DATA) from None
    return codes


def function_restore(ctx: Context, args: list[bytes]) -> Any:
    policy = b"APPEND"
    if len(args) > 4:
        raise CommandError(messages.SYNTAX)
    if len(args) == 4:
        policy = args[3].upper()
        if policy not in (b"FLUSH", b"APPEND", b"REPLACE"):
            raise CommandError(messages.FUNCTION_RESTORE_POLICY)
    codes = _parse_dump(bytes(args[2]))
    state = state_of(ctx)
    libraries = [_compile_library(state, code) for code in codes]
    if policy == b"FLUSH":
        state.libraries.clear()
        state.functions.clear()
    _install(state, libraries, policy == b"REPLACE", lambda n: f"ERR Library {n} already exists")
    return OK


def function_kill(ctx: Context, args: list[bytes]) -> Any:
    raise CommandError(messages.NOTBUSY)


def function_help(ctx: Context, args: list[bytes]) -> Any:
    return list(FUNCTION_HELP)


# -- FCALL -----------------------------------------------------------------------------------------------------------
def _fcall(ctx: Context, args: list[bytes], ro_command: bool) -> Any:
    if not is_int(args[2]):
        raise CommandError(messages.FUNCTION_BAD_NUMKEYS)
    numkeys = int(args[2])
    if numkeys > len(args) - 3:
        raise CommandError(messages.NUMKEYS_GREATER_THAN_ARGS)
    if numkeys < 0:
        raise CommandError(messages.NUMKEYS_NEGATIVE)
    keys, argv = list(args[3:3 + numkeys]), list(args[3 + numkeys:])
    state = state_of(ctx)
    wanted = args[1].decode("utf-8", "surrogateescape").lower()       # function names are case-insensitive
    lib_name = state.functions.get(wanted)
    if lib_name is None:
        raise CommandError(messages.FUNCTION_NOT_FOUND)
    lib = state.libraries[lib_name]
    info = next(f for f in lib.functions.values() if f.name.lower() == wanted)
    fname = info.name
    no_writes = "no-writes" in info.flags
    if ro_command and not no_writes:
        raise CommandError(messages.SCRIPT_WRITE_FLAG_WITH_RO)
    callback = _callback(state, lib, fname)
    return state.vm.run_function(ctx, callback, fname, keys, argv, read_only=ro_command or no_writes)


def fcall(ctx: Context, args: list[bytes]) -> Any:
    return _fcall(ctx, args, ro_command=False)


def fcall_ro(ctx: Context, args: list[bytes]) -> Any:
    return _fcall(ctx, args, ro_command=True)


_KEYS = numkeys_finder(2)
_ACL = "@slow @scripting"
_WRITE_ACL = "@write @slow @scripting"
COMMANDS = [
    command("fcall", -3, "noscript stale skip_monitor no_mandatory_keys movablekeys may_replicate", 0, 0, 0, fcall,
            _ACL, key_finder=_KEYS),
    command("fcall_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys movablekeys", 0, 0, 0, fcall_ro,
            _ACL, key_finder=_KEYS),
    command("function", -2, "", acl="@slow", subcommands=(
        command("function|load", -3, "write denyoom noscript", handler=function_load, acl=_WRITE_ACL),
        command("function|delete", 3, "write noscript", handler=function_delete, acl=_WRITE_ACL),
        command("function|flush", -2, "write noscript", handler=function_flush, acl=_WRITE_ACL),
        command("function|restore", -3, "write denyoom noscript", handler=function_restore, acl=_WRITE_ACL),
        command("function|list", -2, "noscript", handler=function_list, acl=_ACL),
        command("function|dump", 2, "noscript", handler=function_dump, acl=_ACL),
        command("function|stats", 2, "noscript allow_busy", handler=function_stats, acl=_ACL),
        command("function|kill", 2, "noscript allow_busy", handler=function_kill, acl=_ACL),
        command("function|help", 2, "loading stale", handler=function_help, acl=_ACL),
    )),
]
