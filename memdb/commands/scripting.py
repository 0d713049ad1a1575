"""Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (Redis 7.0 eval.c, script.c, script_lua.c).

Theory of operation
-------------------
A script is an ordinary command handler `(ctx, args) -> reply`. EVAL/EVALSHA carry Redis's hidden may_replicate
flag, so the node logs them like writes and every node runs the script at apply time with the entry's `now_ms` and
seeded `rng`; each `redis.call()` runs through the command table with a Context for the same keyspace, same now_ms
and same rng. A script is therefore atomic (nothing else runs meanwhile) and deterministic on every node. The
read-only forms (EVAL_RO, EVALSHA_RO) run locally as reads and refuse write commands.

Replicated state vs. caches. The script cache (sha1 -> body) and the function libraries live in
`keyspace.scripting` (a `ScriptingState`), changed only by logged commands (EVAL, SCRIPT LOAD/FLUSH, FUNCTION ...),
so EVALSHA and FCALL work on a new primary after failover. The Lua VM and its compiled functions are a per-process
cache (`ScriptingState.vm`), rebuilt on demand from the replicated bodies.

The sandbox is stock Lua 5.1 (Redis's language version) through lupa, set up by the Lua prelude in `_PRELUDE`:
no os/io/debug/loadfile/dofile/require/setfenv/getfenv/print; a metatable on _G makes reading an undefined global
("Script attempted to access nonexistent global variable 'x'") and writing any global ("Attempt to modify a
readonly table") errors, as Redis 7's read-only tables do. The only Python objects Lua can reach are the library
callbacks (redis.call, math.random, cjson.encode...), and only to call them: lupa's attribute access is denied.

Determinism and limits (memdb-specific, documented divergences from Redis):
  - math.random is Redis's rand48 (redisLrand48), but instead of one process-wide state (Redis 7.0 never reseeds
    it, so its values depend on every script run before), each run starts from a seed drawn from ctx.rng (the log
    entry's seed). math.randomseed(n) then gives exactly Redis's sequence for n.
  - TIME inside a script answers ctx.now_ms (the entry's time), not the local clock.
  - Scripts cannot run forever: a Lua count hook aborts a script after SCRIPT_INSTRUCTIONS_MAX VM instructions
    with SCRIPT_TOO_LONG (an instruction count is the same on every node, wall time is not). Like any script
    error, commands already executed by the script keep their effects (Redis doesn't roll back either).
    memdb runs scripts synchronously, so SCRIPT KILL / FUNCTION KILL always answer NOTBUSY.
  - EVAL_RO/EVALSHA_RO run locally on one node, so they don't add their script to the replicated cache (Redis's
    EVAL_RO does): EVALSHA of a script only ever run by EVAL_RO answers NOSCRIPT.
  - Available libraries: base, string, table, math, coroutine, `bit` (LuaBitOp API) and `cjson` (encode, decode,
    null; done in Python with lua-cjson's default rules and error texts, decode errors only approximate its token
    names). cmsgpack and struct (C modules in Redis, not in lupa's Lua) are absent.
  - A script reply nested deeper than REPLY_DEPTH_MAX (or a self-referencing table) answers Redis's "ERR reached
    lua stack limit" (Redis reaches it only when its Lua stack runs out, much deeper).
  - type() of redis.call and the other library functions is 'function' (they are Python callbacks: calling them
    directly, not through a Lua wrapper, keeps the script's frame for error positions as Redis's C functions do).
  - Inside scripts, connection-level commands other than PING, ECHO, SELECT and TIME (e.g. INFO, PUBLISH, which
    memdb answers in its server/node layer) answer "This Redis command is not allowed from script".
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import threading
from typing import Any

from memdb.commands import messages
from memdb.commands._typeutil import numkeys_finder
from memdb.commands.args import format_double, parse_int, parse_int32
from memdb.commands.declare import command
from memdb.commands.spec import (
    OK, Blocked, Bool, CommandError, Context, Double, Flag, Map, NullArray, Push, SetReply, SimpleString, Verbatim)

log = logging.getLogger("memdb.scripting")

SCRIPT_INSTRUCTIONS_MAX = 50_000_000      # Lua VM instructions per script run (and per library load)
HOOK_EVERY_INSTRUCTIONS = 10_000          # granularity of the count hook
LUA_MEMORY_MAX_BYTES = 1 << 30            # a safety net for the process, not a replicated limit
REPLY_DEPTH_MAX = 100                     # nesting of a script reply (Redis: until its Lua stack runs out)
COMPILED_SCRIPTS_MAX = 10_000             # this process's compiled-chunk cache is dropped when it grows past this
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
INT32_MAX = (1 << 31) - 1
SCRIPT_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")   # scriptFlags order

# Error texts live in messages.py; this one is memdb's own (the instruction limit).
SCRIPT_TOO_LONG = (f"ERR Script aborted: it exceeded memdb's limit of {SCRIPT_INSTRUCTIONS_MAX} Lua instructions "
                   "(a deterministic stand-in for Redis's busy-script timeout)").encode()

SCRIPT_HELP = [
    b"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DEBUG (YES|SYNC|NO)",
    b"    Set the debug mode for subsequent scripts executed.",
    b"EXISTS <sha1> [<sha1> ...]",
    b"    Return information about the existence of the scripts in the script cache.",
    b"FLUSH [ASYNC|SYNC]",
    b"    Flush the Lua scripts cache. Very dangerous on replicas.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the scripts cache.",
    b"    * SYNC: Synchronously flush the scripts cache.",
    b"KILL",
    b"    Kill the currently executing Lua script.",
    b"LOAD <script>",
    b"    Load a script into the scripts cache without executing it.",
    b"HELP",
    b"    Prints this help.",
]


# -- replicated state ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class FunctionInfo:
    name: str
    flags: tuple[str, ...]
    description: bytes | None


@dataclasses.dataclass
class Library:
    name: str
    code: bytes
    functions: dict[str, FunctionInfo]      # in registration order


class ScriptingState:
    """keyspace.scripting: the script cache and the function libraries (replicated), plus this process's VM."""

    def __init__(self) -> None:
        self.scripts: dict[bytes, bytes] = {}           # lower-case hex sha1 -> body
        self.libraries: dict[str, Library] = {}         # library name -> library
        self.functions: dict[str, str] = {}             # lower-case function name -> library name
        self._vm: LuaVM | None = None

    def __getstate__(self) -> dict:
        """For a snapshot (memdb/snapshot.py): the replicated part; the VM is rebuilt on demand."""
        return {**self.__dict__, "_vm": None}

    @property
    def vm(self) -> "LuaVM":
        if self._vm is None:
            self._vm = LuaVM()
        return self._vm


def state_of(ctx: Context) -> ScriptingState:
    state = ctx.keyspace.scripting
    if state is None:
        state = ctx.keyspace.scripting = ScriptingState()
    return state


def sha1hex(body: bytes) -> bytes:
    return hashlib.sha1(body).hexdigest().encode()


# -- rand48 (Redis rand.c) -----------------------------------------------------------------------------------------
class Rand48:
    """redisLrand48/redisSrand48: the 48-bit LCG of POSIX lrand48 (a = 0x5DEECE66D, c = 0xB)."""
    __slots__ = ("state",)

    def __init__(self, seed: int = 0):
        self.seed(seed)

    def seed(self, value: int) -> None:
        self.state = ((value & 0xFFFFFFFF) << 16) | 0x330E

    def next(self) -> int:
        self.state = (0x5DEECE66D * self.state + 0xB) & 0xFFFFFFFFFFFF
        return self.state >> 17

    def random(self) -> float:
        """redis_math_random's r: (lrand48() % REDIS_LRAND48_MAX) / REDIS_LRAND48_MAX."""
        return (self.next() % INT32_MAX) / INT32_MAX


# -- the VM ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Run:
    """The script being run: what redis.call() needs."""
    ctx: Context
    db: Any
    read_only: bool
    resp: int = 2
    rand: Rand48 = dataclasses.field(default_factory=Rand48)


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python attributes are not accessible from scripts")


def _to_int32(value: Any) -> int:
    number = int(value) if not isinstance(value, float) or math.isfinite(value) else 0
    number &= 0xFFFFFFFF
    return number - (1 << 32) if number & 0x80000000 else number


def _bitop(name: bytes, *values: Any) -> Any:
    """LuaBitOp on 32-bit integers (numbers are first normalised like bit.tobit)."""
    op = name.decode()
    nums = [_to_int32(float(v) if not isinstance(v, (int, float)) else v) for v in values]
    a = nums[0]
    if op == "tobit":
        return a
    if op == "bnot":
        return _to_int32(~a)
    if op in ("band", "bor", "bxor"):
        acc = a
        for b in nums[1:]:
            acc = acc & b if op == "band" else acc | b if op == "bor" else acc ^ b
        return _to_int32(acc)
    if op == "bswap":
        return _to_int32(int.from_bytes((a & 0xFFFFFFFF).to_bytes(4, "little"), "big"))
    if op == "tohex":
        n = nums[1] if len(nums) > 1 else 8
        digits = "0123456789ABCDEF" if n < 0 else "0123456789abcdef"
        n = min(abs(n), 8)
        u = a & 0xFFFFFFFF
        return "".join(digits[(u >> (4 * i)) & 15] for i in reversed(range(n))).encode()
    shift = (nums[1] if len(nums) > 1 else 0) & 31
    u = a & 0xFFFFFFFF
    if op == "lshift":
        return _to_int32(u << shift)
    if op == "rshift":
        return _to_int32(u >> shift)
    if op == "arshift":
        return _to_int32(a >> shift)
    if op == "rol":
        return _to_int32((u << shift) | (u >> (32 - shift)))
    if op == "ror":
        return _to_int32((u >> shift) | (u << (32 - shift)))
    raise AssertionError(op)


class LuaVM:
    """One Lua state and the compiled scripts/libraries of this process (a cache: never replicated)."""

    def __init__(self) -> None:
        from lupa import lua51
        self.lua = lua51.LuaRuntime(encoding=None, register_eval=False, register_builtins=False,
                                    unpack_returned_tuples=True, attribute_filter=_deny_attributes,
                                    max_memory=LUA_MEMORY_MAX_BYTES)
        entry = self.lua.execute(_PRELUDE, self._call, self._pcall, self._acl_check, self._sha1hex, self._log,
                                 self._setresp, self._random, self._randomseed, _bitop, _unwrap,
                                 self._json_encode, self._json_decode, HOOK_EVERY_INSTRUCTIONS)
        self._compile = entry[b"compile"]
        self._run_script = entry[b"run_script"]
        self._run_function = entry[b"run_function"]
        self._load_library = entry[b"load_library"]
        self._json_null = entry[b"json_null"]
        self._is_json_null = entry[b"is_json_null"]
        self._table_from = self.lua.table_from
        self.scripts: dict[bytes, Any] = {}                 # sha -> compiled chunk
        self.libraries: dict[bytes, dict[str, Any]] = {}    # library code -> function name -> callback
        self.run: _Run | None = None
        self._lock = threading.Lock()     # one script at a time per VM (handlers may run on several threads)

    # -- compiling -------------------------------------------------------------------------------------------------
    def script(self, sha: bytes, body: bytes) -> Any:
        """The compiled chunk of body (shebang line turned into a comment, so line numbers stay right)."""
        fn = self.scripts.get(sha)
        if fn is None:
            source = b"--" + body if body.startswith(b"#!") else body
            result = self._compile(source, b"@user_script")
            fn, err = result if isinstance(result, tuple) else (result, None)
            if fn is None:
                raise CommandError(f"ERR Error compiling script (new function): {_text(err)}")
            if len(self.scripts) >= COMPILED_SCRIPTS_MAX:
                self.scripts.clear()          # a cache: recompiled from the replicated bodies on demand
            self.scripts[sha] = fn
        return fn

    def forget_scripts(self) -> None:
        self.scripts.clear()

    def load_library(self, code: bytes, body_offset: int) -> list[tuple[str, Any, tuple[str, ...], bytes | None]]:
        """Run a library's code; returns (name, callback, flags, description) per registered function."""
        source = code[body_offset:]          # starts with the newline ending the shebang: line numbers stay right
        with self._lock:
            result = self._load_library(source, SCRIPT_INSTRUCTIONS_MAX // HOOK_EVERY_INSTRUCTIONS, SCRIPT_TOO_LONG)
        compiled, out, err = (tuple(result) + (None, None))[:3]
        if not compiled:
            raise CommandError(f"ERR Error compiling function: {_text(out)}")
        if out is None:
            message = err[b"err"] if _is_table(err) else err
            raise CommandError(f"ERR Error registering functions: {_text(message)}")
        functions = []
        for i in range(1, len(out) + 1):
            item = out[i]
            meta = item[2]
            flags_table = meta[b"flags"]
            flags = tuple(_text(flags_table[j]) for j in range(1, len(flags_table) + 1))
            flags = tuple(f for f in SCRIPT_FLAGS if f in flags)
            functions.append((_text(item[1]), meta[b"callback"], flags, meta[b"description"]))
        if not functions:
            raise CommandError("ERR No functions registered")
        return functions

    # -- running ---------------------------------------------------------------------------------------------------
    def run_script(self, ctx: Context, fn: Any, name: str, keys: list[bytes], argv: list[bytes],
                   read_only: bool) -> Any:
        return self._execute(self._run_script, ctx, fn, name, keys, argv, read_only)

    def run_function(self, ctx: Context, fn: Any, name: str, keys: list[bytes], argv: list[bytes],
                     read_only: bool) -> Any:
        return self._execute(self._run_function, ctx, fn, name, keys, argv, read_only)

    def _execute(self, runner: Any, ctx: Context, fn: Any, name: str, keys: list[bytes], argv: list[bytes],
                 read_only: bool) -> Any:
        with self._lock:
            run = _Run(ctx=ctx, db=ctx.db, read_only=read_only, rand=Rand48(ctx.rng.getrandbits(32)))
            self.run = run
            try:
                ok, result = runner(fn, self._table_from(keys), self._table_from(argv),
                                    SCRIPT_INSTRUCTIONS_MAX // HOOK_EVERY_INSTRUCTIONS, SCRIPT_TOO_LONG)
                if not ok:
                    raise CommandError(_script_error(result, name))
                reply = self._to_reply(result, run.resp)
            finally:
                self.run = None
        if isinstance(reply, CommandError):
            raise reply
        return reply

    # -- callbacks (Lua -> Python) ---------------------------------------------------------------------------------
    def _call(self, *args: Any) -> Any:
        """redis.call: the reply, or raise the error (the script stops unless it catches it)."""
        reply = self._call_or_error(args, lookup_only=False)
        if isinstance(reply, CommandError):
            raise _LuaRaise(reply.message, is_table=True)
        return reply

    def _pcall(self, *args: Any) -> Any:
        """redis.pcall: the reply, or the error as a table {err=...}."""
        reply = self._call_or_error(args, lookup_only=False)
        if isinstance(reply, CommandError):
            return self._error_table(reply.message)
        return reply

    def _acl_check(self, *args: Any) -> Any:
        reply = self._call_or_error(args, lookup_only=True)
        if isinstance(reply, CommandError):
            if reply.message == messages.SCRIPT_CALL_NO_ARGS:
                raise _LuaRaise(reply.message, is_table=True)
            raise _LuaRaise("ERR Invalid command passed to redis.acl_check_cmd()", is_table=True)
        return True

    def _call_or_error(self, args: tuple[Any, ...], lookup_only: bool) -> Any:
        run = self.run
        assert run is not None
        if not args:
            return CommandError(messages.SCRIPT_CALL_NO_ARGS)
        argv = []
        for arg in args:
            kind = type(arg)
            if kind is bytes:
                argv.append(arg)
            elif kind is int or kind is float:
                argv.append(b"%.17g" % arg)     # Redis 7.0: snprintf("%.17g"), not Lua's %.14g
            else:
                return CommandError(messages.SCRIPT_CALL_BAD_ARG)
        try:
            spec = _lookup(argv)
            if lookup_only:
                return None
            reply = self._call_command(run, spec, argv)
        except CommandError as exc:
            return exc
        if isinstance(reply, CommandError):
            return reply
        return self._to_lua(reply, run.resp)

    def _call_command(self, run: _Run, spec: Any, argv: list[bytes]) -> Any:
        if Flag.NOSCRIPT in spec.flags:
            raise CommandError(messages.SCRIPT_CALL_NOSCRIPT)
        if Flag.WRITE in spec.flags and run.read_only:
            raise CommandError(messages.SCRIPT_CALL_WRITE_IN_RO)
        ctx = run.ctx
        if Flag.CONNECTION in spec.flags or spec.handler is None:
            return self._connection_command(run, spec.name, argv)
        inner = Context(keyspace=ctx.keyspace, db=run.db, now_ms=ctx.now_ms, rng=ctx.rng,
                        is_replica_read=ctx.is_replica_read, resp=run.resp)
        reply = spec.handler(inner, argv)
        if isinstance(reply, Blocked):      # blocking commands never block inside a script
            reply = reply.timeout_reply
        return reply

    def _connection_command(self, run: _Run, name: str, argv: list[bytes]) -> Any:
        if name == "ping":
            if len(argv) > 2:
                raise CommandError(messages.wrong_arity("ping"))
            return argv[1] if len(argv) == 2 else SimpleString("PONG")
        if name == "echo":
            return argv[1]
        if name == "time":
            now_ms = run.ctx.now_ms
            return [b"%d" % (now_ms // 1000), b"%d" % ((now_ms % 1000) * 1000)]
        if name == "select":
            index = parse_int32(argv[1])
            if not 0 <= index < len(run.ctx.keyspace.dbs):
                raise CommandError(messages.DB_INDEX_OUT_OF_RANGE)
            run.db = run.ctx.keyspace.dbs[index]
            return OK
        raise CommandError(messages.SCRIPT_CALL_NOSCRIPT)

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise _LuaRaise("ERR wrong number of arguments", is_table=True)
        data = args[0]
        if type(data) in (int, float):
            data = self.lua.eval("tostring")(data)
        return sha1hex(data if type(data) is bytes else b"")

    def _log(self, *args: Any) -> None:
        if len(args) < 2:
            raise _LuaRaise("ERR redis.log() requires two arguments or more.", is_table=True)
        level = args[0]
        if type(level) not in (int, float):
            raise _LuaRaise("ERR First argument must be a number", is_table=True)
        if not 0 <= level <= 3:
            raise _LuaRaise("ERR Invalid debug level.", is_table=True)
        text = b" ".join(a if type(a) is bytes else b"%.14g" % a for a in args[1:] if type(a) in (bytes, int, float))
        log.log((logging.DEBUG, logging.INFO, logging.INFO, logging.WARNING)[int(level)], "script: %s", _text(text))

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            raise _LuaRaise("ERR redis.setresp() requires one argument.", is_table=True)
        if args[0] not in (2, 3) or type(args[0]) is bool:
            raise _LuaRaise("ERR RESP version must be 2 or 3.", is_table=True)
        assert self.run is not None
        self.run.resp = int(args[0])

    def _random(self, *args: Any) -> Any:
        """redis_math_random (the draw happens before the argument checks, as in Redis)."""
        assert self.run is not None
        r = self.run.rand.random()
        if not args:
            return r
        if len(args) == 1:
            upper = _check_int(args[0], 1, "random")
            if upper < 1:
                raise _LuaRaise("bad argument #1 to 'random' (interval is empty)", positioned=True)
            return math.floor(r * upper) + 1
        if len(args) == 2:
            lower, upper = _check_int(args[0], 1, "random"), _check_int(args[1], 2, "random")
            if lower > upper:
                raise _LuaRaise("bad argument #2 to 'random' (interval is empty)", positioned=True)
            return math.floor(r * (upper - lower + 1)) + lower
        raise _LuaRaise("wrong number of arguments", positioned=True)

    def _randomseed(self, *args: Any) -> None:
        assert self.run is not None
        self.run.rand.seed(_check_int(args[0] if args else None, 1, "randomseed"))

    # -- cjson ---------------------------------------------------------------------------------------------------
    def _json_encode(self, *args: Any) -> bytes:
        if len(args) != 1:
            raise _LuaRaise("bad argument #1 to 'encode' (expected 1 argument)", positioned=True)
        out: list[bytes] = []
        self._json_value(args[0], out, 0)
        return b"".join(out)

    def _json_value(self, value: Any, out: list[bytes], depth: int) -> None:
        kind = type(value)
        if value is None:
            out.append(b"null")
        elif kind is bool:
            out.append(b"true" if value else b"false")
        elif kind is int or kind is float:
            if isinstance(value, float) and not math.isfinite(value):
                raise _LuaRaise("Cannot serialise number: must not be NaN or Inf", positioned=True)
            out.append(b"%.14g" % value)
        elif kind is bytes:
            out.append(_json_string(value))
        else:
            lua_kind = _lua_type(value)
            if lua_kind == "table":
                self._json_table(value, out, depth + 1)
            elif lua_kind == "userdata" and self._is_json_null(value):
                out.append(b"null")
            else:
                name = "function" if lua_kind in ("function", "userdata") and callable(value) else lua_kind
                raise _LuaRaise(f"Cannot serialise {name}: type not supported", positioned=True)

    def _json_table(self, table: Any, out: list[bytes], depth: int) -> None:
        if depth > 1000:
            raise _LuaRaise(f"Cannot serialise, excessive nesting ({depth})", positioned=True)
        items = list(table.items())
        is_array = all(type(k) in (int, float) and k >= 1 and k == int(k) for k, _ in items)
        if is_array and items:
            size = int(max(k for k, _ in items))
            if size > 10 and size > 2 * len(items):      # lua-cjson encode_sparse_array defaults: ratio 2, safe 10
                raise _LuaRaise("Cannot serialise table: excessively sparse array", positioned=True)
            out.append(b"[")
            for i in range(1, size + 1):
                if i > 1:
                    out.append(b",")
                self._json_value(table[i], out, depth)
            out.append(b"]")
            return
        out.append(b"{")
        for n, (key, value) in enumerate(items):
            if type(key) is bytes:
                name = key
            elif type(key) in (int, float):
                name = b"%.14g" % key
            else:
                raise _LuaRaise("Cannot serialise table: table key must be a number or string", positioned=True)
            if n:
                out.append(b",")
            out.append(_json_string(name))
            out.append(b":")
            self._json_value(value, out, depth)
        out.append(b"}")

    def _json_decode(self, *args: Any) -> Any:
        if len(args) != 1:
            raise _LuaRaise("bad argument #1 to 'decode' (expected 1 argument)", positioned=True)
        text = args[0]
        if type(text) in (int, float):
            text = b"%.14g" % text
        if type(text) is not bytes:
            raise _LuaRaise(f"bad argument #1 to 'decode' (string expected, got {_lua_type(text)})", positioned=True)
        try:
            data = json.loads(text, parse_int=float, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            position = getattr(exc, "pos", 0) + 1
            raise _LuaRaise(f"Expected value but found invalid token at character {position}",
                            positioned=True) from None
        return self._json_to_lua(data)

    def _json_to_lua(self, value: Any) -> Any:
        if value is None:
            return self._json_null
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
        if isinstance(value, float) and value == int(value) and abs(value) < 2 ** 63:
            return value
        if isinstance(value, list):
            table = self._table_from({})
            for i, item in enumerate(value, 1):
                table[i] = self._json_to_lua(item)
            return table
        if isinstance(value, dict):
            table = self._table_from({})
            for key, item in value.items():
                table[key.encode("utf-8", "surrogatepass")] = self._json_to_lua(item)
            return table
        return value

    # -- conversions -----------------------------------------------------------------------------------------------
    def _error_table(self, message: str) -> Any:
        """luaPushErrorBuff of a Redis error reply text ("CODE msg")."""
        code, sep, rest = message.partition(" ")
        if not sep:
            code, rest = "ERR", message
        return self._table_from({b"err": f"{code} {rest.strip(chr(13) + chr(10))}".encode("utf-8",
                                                                                       "surrogateescape")})

    def _to_lua(self, value: Any, resp: int) -> Any:
        """A command's reply as Lua sees it (script_lua.c redisProtocolToLuaType), for the script's RESP version."""
        kind = type(value)
        if kind is bytes or kind is int:
            return value
        if value is None:
            return False if resp == 2 else None
        if isinstance(value, (bytes, bytearray, memoryview)):     # subclasses, in-place string values
            return bytes(value)
        if kind is list or kind is tuple or kind is Push:
            items = value.items if kind is Push else value
            return self._array([self._to_lua(v, resp) for v in items])
        if kind is SimpleString:
            return self._table_from({b"ok": value.value.encode()})
        if isinstance(value, CommandError):
            return self._error_table(value.message)
        if kind is Map or kind is dict:
            pairs = value.items if kind is Map else list(value.items())
            if resp == 2:
                return self._array([self._to_lua(v, resp) for pair in pairs for v in pair])
            inner = self._table_from({})
            for k, v in pairs:
                inner[self._to_lua(k, resp)] = self._to_lua(v, resp)
            return self._table_from({b"map": inner})
        if kind is SetReply:
            if resp == 2:
                return self._array([self._to_lua(v, resp) for v in value.items])
            inner = self._table_from({})
            for member in value.items:
                inner[self._to_lua(member, resp)] = True
            return self._table_from({b"set": inner})
        if kind is Double or kind is float:
            number = value.value if kind is Double else value
            if resp == 2:
                return format_double(number)
            return self._table_from({b"double": number})
        if kind is Bool:
            if resp == 2:
                return 1 if value.value else 0
            return value.value
        if kind is NullArray:
            return False if resp == 2 else None
        if kind is Verbatim:
            if resp == 2:
                return value.value
            return self._table_from({b"verbatim_string": self._table_from(
                {b"format": value.format.encode(), b"string": value.value})})
        raise AssertionError(f"no Lua conversion for reply {value!r}")

    def _array(self, items: list[Any]) -> Any:
        table = self._table_from({})
        for i, item in enumerate(items, 1):
            if item is not None:          # a RESP3 null inside an array is a hole, as in Redis
                table[i] = item
        return table

    def _to_reply(self, value: Any, resp: int, depth: int = 0) -> Any:
        """A Lua value returned by a script as a reply (script_lua.c luaReplyToRedisReply)."""
        if depth > REPLY_DEPTH_MAX:
            # Redis runs out of Lua stack (lua_checkstack) on deep or self-referencing tables
            raise CommandError(messages.SCRIPT_REPLY_TOO_DEEP)
        kind = type(value)
        if kind is bytes:
            return value
        if kind is int:
            return value if INT64_MIN <= value <= INT64_MAX else INT64_MIN
        if kind is float:
            # (long long) cast of a double: truncation; NaN and out-of-range give LLONG_MIN on x86-64
            if math.isnan(value) or not -9.223372036854775808e18 <= value < 9.223372036854775808e18:
                return INT64_MIN
            return int(value)
        if kind is bool:
            if resp == 2:
                return 1 if value else None
            return Bool(value)
        if value is None or not _is_table(value):
            return None
        err = value[b"err"]
        if type(err) is bytes:
            return CommandError(_sanitize(_text(err)))
        ok = value[b"ok"]
        if type(ok) is bytes:
            return SimpleString(_sanitize(_text(ok)))
        double = value[b"double"]
        if type(double) in (int, float):
            return Double(float(double))
        big = value[b"big_number"]
        if type(big) is bytes:
            return big
        mapping = value[b"map"]
        if _is_table(mapping):
            return Map([(self._to_reply(k, resp, depth + 1), self._to_reply(v, resp, depth + 1))
                        for k, v in mapping.items()])
        members = value[b"set"]
        if _is_table(members):
            return SetReply([self._to_reply(k, resp, depth + 1) for k in members.keys()])
        items = []
        i = 1
        while True:
            item = value[i]
            if item is None:
                break
            items.append(self._to_reply(item, resp, depth + 1))
            i += 1
        return items


class _LuaRaise(Exception):
    """Raised by a Python callback to raise a Lua error: an error table {err=message} (is_table) or a message,
    to which the error handler prefixes the script position (positioned), like luaL_error."""

    def __init__(self, message: str, is_table: bool = False, positioned: bool = False):
        super().__init__(message)
        self.message, self.is_table, self.positioned = message, is_table, positioned


def _unwrap(exc: Any) -> tuple[bytes, bool, bool]:
    if isinstance(exc, _LuaRaise):
        return exc.message.encode("utf-8", "surrogateescape"), exc.is_table, exc.positioned
    return str(exc).encode("utf-8", "surrogateescape"), False, True


def _check_int(value: Any, position: int, function: str) -> int:
    """luaL_checkint: a number or a numeric string, truncated toward zero."""
    number: Any = value
    if type(value) is bytes:
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if type(number) not in (int, float) or (type(number) is float and not math.isfinite(number)):
        got = "no value" if value is None else {bytes: "string", bool: "boolean"}.get(type(value), "table")
        raise _LuaRaise(f"bad argument #{position} to '{function}' (number expected, got {got})", positioned=True)
    number = int(number)
    return max(min(number, INT64_MAX), INT64_MIN)


def _json_string(data: bytes) -> bytes:
    """lua-cjson's string escaping: '/' is escaped, control characters as \\u00XX except \\b \\f \\n \\r \\t."""
    out = [b'"']
    for byte in data:
        escaped = _JSON_ESCAPES.get(byte)
        out.append(escaped if escaped is not None else bytes((byte,)))
    out.append(b'"')
    return b"".join(out)


_JSON_ESCAPES = {i: b"\\u%04x" % i for i in range(32)}
_JSON_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r", 34: b'\\"', 92: b"\\\\",
                      47: b"\\/", 127: b"\\u007f"})


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _lua_type(value: Any) -> str:
    from lupa import lua51
    kind = lua51.lua_type(value)
    return kind if kind is not None else "userdata"


def _is_table(value: Any) -> bool:
    from lupa import lua51
    return lua51.lua_type(value) == "table"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _sanitize(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def _script_error(err: Any, name: str) -> str:
    """The reply of a script that raised (luaCallFunction): '<msg> script: <name>, on <source>:<line>.'."""
    if not _is_table(err):
        return f"ERR Error running script {name}, {_text(err)[:100]}"
    message = err[b"err"]
    text = _text(message) if type(message) is bytes else "ERR unknown error"
    source, line = err[b"source"], err[b"line"]
    if source is not None and line is not None:
        text += f" script: {name}, on {_text(source)}:{line}."
    return text


def _lookup(argv: list[bytes]) -> Any:
    """The command table row a script calls (lookupCommand: an unknown subcommand is an unknown command)."""
    from memdb.commands.table import COMMAND_TABLE, SUBCOMMANDS
    name = argv[0].lower().decode("utf-8", "surrogateescape")
    spec = COMMAND_TABLE.get(name)
    if spec is None:
        raise CommandError(messages.SCRIPT_CALL_UNKNOWN)
    if spec.subcommands and len(argv) >= 2:
        spec = SUBCOMMANDS[name].get(argv[1].lower().decode("utf-8", "surrogateescape"))
        if spec is None:
            raise CommandError(messages.SCRIPT_CALL_UNKNOWN)
    if not spec.arity_ok(len(argv)):
        raise CommandError(messages.SCRIPT_CALL_ARITY)
    return spec


# -- shebang (eval.c evalExtractShebangFlags) ----------------------------------------------------------------------
def parse_shebang(body: bytes) -> tuple[str, ...] | None:
    """The flags of a script with a '#!lua' first line, or None for a script without one (legacy script)."""
    if not body.startswith(b"#!"):
        return None
    end = body.find(b"\n")
    if end < 0:
        raise CommandError(messages.SCRIPT_INVALID_SHEBANG)
    parts = body[:end].split()
    if not parts or parts[0] != b"#!lua":
        engine = parts[0] if parts else b"#!"
        raise CommandError(f"ERR Unexpected engine in script shebang: {_text(engine)}")
    flags: list[str] = []
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise CommandError(f"ERR Unknown lua shebang option: {_text(part)}")
        for flag in part[len(b"flags="):].split(b","):
            if not flag:
                continue
            if _text(flag) not in SCRIPT_FLAGS:
                raise CommandError(f"ERR Unexpected flag in script shebang: {_text(flag)}")
            flags.append(_text(flag))
    return tuple(flags)


# -- numkeys ---------------------------------------------------------------------------------------------------------
def split_keys(args: list[bytes], not_integer: str = messages.NOT_INTEGER) -> tuple[list[bytes], list[bytes]]:
    """KEYS and ARGV of `EVAL script numkeys key... arg...` (evalGetKeys / fcallCommandGeneric checks)."""
    numkeys = parse_int(args[2], not_integer)
    if numkeys > len(args) - 3:
        raise CommandError(messages.NUMKEYS_GREATER_THAN_ARGS)
    if numkeys < 0:
        raise CommandError(messages.NUMKEYS_NEGATIVE)
    return list(args[3:3 + numkeys]), list(args[3 + numkeys:])


# -- EVAL family -----------------------------------------------------------------------------------------------------
def _eval_generic(ctx: Context, args: list[bytes], by_sha: bool, ro_command: bool) -> Any:
    keys, argv = split_keys(args)
    state = state_of(ctx)
    vm = state.vm
    if by_sha:
        sha = args[1].lower()
        body = state.scripts.get(sha)
        if body is None:
            raise CommandError(messages.NOSCRIPT)
    else:
        body = bytes(args[1])
        sha = sha1hex(body)
    flags = parse_shebang(body)
    fn = vm.script(sha, body)
    if not by_sha and not ro_command:
        state.scripts.setdefault(sha, body)     # EVAL caches its script (replicated: EVAL is a log entry)
    if ro_command and flags is not None and "no-writes" not in flags:
        raise CommandError(messages.SCRIPT_WRITE_FLAG_WITH_RO)
    read_only = ro_command or (flags is not None and "no-writes" in flags)
    return vm.run_script(ctx, fn, sha.decode(), keys, argv, read_only)


def eval_(ctx: Context, args: list[bytes]) -> Any:
    return _eval_generic(ctx, args, by_sha=False, ro_command=False)


def evalsha(ctx: Context, args: list[bytes]) -> Any:
    return _eval_generic(ctx, args, by_sha=True, ro_command=False)


def eval_ro(ctx: Context, args: list[bytes]) -> Any:
    return _eval_generic(ctx, args, by_sha=False, ro_command=True)


def evalsha_ro(ctx: Context, args: list[bytes]) -> Any:
    return _eval_generic(ctx, args, by_sha=True, ro_command=True)


# -- SCRIPT ----------------------------------------------------------------------------------------------------------
def script_load(ctx: Context, args: list[bytes]) -> Any:
    body = bytes(args[2])
    sha = sha1hex(body)
    state = state_of(ctx)
    parse_shebang(body)
    state.vm.script(sha, body)
    state.scripts.setdefault(sha, body)
    return sha


def script_exists(ctx: Context, args: list[bytes]) -> Any:
    scripts = state_of(ctx).scripts
    return [1 if arg.lower() in scripts else 0 for arg in args[2:]]


def script_flush(ctx: Context, args: list[bytes]) -> Any:
    if len(args) > 3 or (len(args) == 3 and args[2].upper() not in (b"SYNC", b"ASYNC")):
        raise CommandError(messages.SCRIPT_FLUSH_OPTION)
    state = state_of(ctx)
    state.scripts.clear()
    state.vm.forget_scripts()
    return OK


def script_kill(ctx: Context, args: list[bytes]) -> Any:
    return _notbusy()


def _notbusy() -> Any:
    # memdb runs a script to completion inside one handler call: no script is ever running when KILL arrives.
    raise CommandError(messages.NOTBUSY)


def script_help(ctx: Context, args: list[bytes]) -> Any:
    return list(SCRIPT_HELP)


_EVAL_KEYS = numkeys_finder(2)
_ACL = "@slow @scripting"
# may_replicate is hidden from COMMAND INFO (Redis hides it too); it makes the node log these commands.
COMMANDS = [
    command("eval", -3, "noscript stale skip_monitor no_mandatory_keys movablekeys may_replicate", 0, 0, 0, eval_,
            _ACL, key_finder=_EVAL_KEYS),
    command("evalsha", -3, "noscript stale skip_monitor no_mandatory_keys movablekeys may_replicate", 0, 0, 0,
            evalsha, _ACL, key_finder=_EVAL_KEYS),
    command("eval_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys movablekeys", 0, 0, 0, eval_ro,
            _ACL, key_finder=_EVAL_KEYS),
    command("evalsha_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys movablekeys", 0, 0, 0,
            evalsha_ro, _ACL, key_finder=_EVAL_KEYS),
    command("script", -2, "", acl="@slow", subcommands=(
        command("script|load", 3, "noscript stale may_replicate", handler=script_load, acl=_ACL),
        command("script|exists", -3, "noscript", handler=script_exists, acl=_ACL),
        command("script|flush", -2, "noscript may_replicate", handler=script_flush, acl=_ACL),
        command("script|kill", 2, "noscript allow_busy", handler=script_kill, acl=_ACL),
        command("script|help", 2, "loading stale", handler=script_help, acl=_ACL),
    )),
]

_PRELUDE = r"""
-- memdb's Lua sandbox (Redis 7.0 script_lua.c / eval.c / function_lua.c, rebuilt on stock Lua 5.1).
-- Loaded once per VM by memdb/commands/scripting.py with the Python callbacks as arguments; returns the internal
-- entry points. Everything the scripts must not reach (debug, setfenv, the callbacks) stays in locals here.
local py_call, py_pcall, py_acl_check, py_sha1hex, py_log, py_setresp, py_random, py_randomseed, py_bitop, py_unwrap,
      py_json_encode, py_json_decode, hook_every = ...

local G = _G
local dbg = debug
local type, tostring, tonumber, error, select, rawget, rawset = type, tostring, tonumber, error, select, rawget, rawset
local setmetatable, setfenv, loadstring, pairs, ipairs = setmetatable, setfenv, loadstring, pairs, ipairs
local lua_pcall, lua_xpcall = pcall, xpcall
local co_create, co_resume = coroutine.create, coroutine.resume
local floor, ceil = math.floor, math.ceil
local str_sub, str_find, str_gsub = string.sub, string.find, string.gsub
local json_null = newproxy(false)      -- cjson.null: a userdata, as lua-cjson's lightuserdata NULL

-- Not in Redis's sandbox (eval.c luaLoadLibraries / deny list).
for _, name in ipairs({'dofile', 'loadfile', 'print', 'require', 'module', 'setfenv', 'getfenv', 'newproxy',
                       'debug', 'os', 'io', 'package', 'python'}) do
  rawset(G, name, nil)
end

-- Instruction budget: a count hook every `hook_every` VM instructions; once over budget the script is aborted and
-- every pcall/xpcall/coroutine.resume re-raises, so a script cannot catch its own abort. Deterministic: the same
-- script on the same data executes the same instructions on every node.
local ticks, ticks_max, aborted, abort_msg = 0, 0, false, 'ERR script aborted'
local function hook()
  ticks = ticks + 1
  if aborted or ticks > ticks_max then
    aborted = true
    error({err = abort_msg}, 0)
  end
end
-- Errors raised by Python callbacks (redis.call, math.random...) arrive as a userdata wrapping the Python
-- exception; user code only ever sees what Redis would give it: an error table or a message.
local function convert(e)
  if type(e) == 'userdata' then
    local msg, is_table = py_unwrap(e)
    if is_table then return {err = msg} end
    return msg
  end
  return e
end
local function recheck(ok, ...)
  if aborted then error({err = abort_msg}, 0) end
  if not ok then return ok, convert((...)) end
  return ok, ...
end
-- Redis 7.0's pcall (script_lua.c luaRedisPcall) hands out an error table's `err` string, not the table.
local function pcall_result(ok, ...)
  if not ok then
    local e = ...
    if type(e) == 'table' then
      local msg = rawget(e, 'err')
      if type(msg) == 'string' or type(msg) == 'number' then return false, msg end
    end
    return false, e
  end
  return ok, ...
end
rawset(G, 'pcall', function(...) return pcall_result(recheck(lua_pcall(...))) end)
rawset(G, 'xpcall', function(f, h) return recheck(lua_xpcall(f, function(e) return h(convert(e)) end)) end)
local function hooked_create(f)
  local co = co_create(f)
  dbg.sethook(co, hook, '', hook_every)
  return co
end
coroutine.create = hooked_create
coroutine.resume = function(...) return recheck(co_resume(...)) end
coroutine.wrap = function(f)
  local co = hooked_create(f)
  return function(...)
    return (function(ok, ...)
      if not ok then error((...), 0) end
      return ...
    end)(recheck(co_resume(co, ...)))
  end
end

-- luaPushErrorBuff: "-CODE msg" keeps CODE, anything else gets ERR; trailing CR/LF trimmed.
local function error_table(s)
  local code, msg
  if str_sub(s, 1, 1) == '-' then
    local sp = str_find(s, ' ', 1, true)
    if sp then code, msg = str_sub(s, 2, sp - 1), str_sub(s, sp + 1) else code, msg = 'ERR', str_sub(s, 2) end
  else
    code, msg = 'ERR', s
  end
  msg = str_gsub(str_gsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end

-- The error handler of every run (eval.c __redis__err__handler): position of the innermost user frame.
local function err_handler(err)
  local info
  local level = 2
  while true do
    local i = dbg.getinfo(level, 'nSl')
    if not i then break end
    if i.what ~= 'C' and str_sub(i.source, 1, 6) == '@user_' then info = i; break end
    level = level + 1
  end
  if type(err) == 'userdata' then
    local msg, is_table, positioned = py_unwrap(err)
    if is_table then
      err = {err = msg}
    else
      if positioned and info then msg = info.short_src .. ':' .. info.currentline .. ': ' .. msg end
      err = {err = 'ERR ' .. msg}
    end
  elseif type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if info then
    rawset(err, 'source', info.source)
    rawset(err, 'line', info.currentline)
  end
  return err
end
rawset(G, '__redis__err__handler', err_handler)

-- the redis table ------------------------------------------------------------------------------------------------
local redis = {}
-- Python callbacks are called directly (not through a Lua wrapper), so that a tail call `return redis.call(...)`
-- keeps the script's frame on the stack and errors point at the script's line, as in Redis.
redis.call = py_call
redis.pcall = py_pcall
redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then return error_table('wrong number or type of arguments') end
  if str_sub(e, 1, 1) ~= '-' then e = '-' .. e end
  return error_table(e)
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then return error_table('wrong number or type of arguments') end
  return {ok = s}
end
redis.sha1hex = py_sha1hex
redis.log = py_log
redis.setresp = py_setresp
redis.set_repl = function(...)
  if select('#', ...) ~= 1 then error(error_table('redis.set_repl() requires one argument.'), 0) end
  local v = ...
  if type(v) ~= 'number' or v < 0 or v > 3 then
    error(error_table('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'), 0)
  end
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = py_acl_check
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
rawset(G, 'redis', redis)

-- math.random / math.randomseed: Redis's rand48 (redisLrand48), state kept in Python and seeded per run.
math.random = py_random
math.randomseed = py_randomseed

-- bit (LuaBitOp API, 32-bit signed results), computed in Python.
local bit = {}
for _, name in ipairs({'tobit', 'bnot', 'band', 'bor', 'bxor', 'lshift', 'rshift', 'arshift', 'rol', 'ror', 'bswap',
                       'tohex'}) do
  bit[name] = function(...)
    local n = select('#', ...)
    for j = 1, n do
      if type(tonumber((select(j, ...)))) ~= 'number' then
        error("bad argument #" .. j .. " to '" .. name .. "' (number expected, got " .. type((select(j, ...))) .. ")", 2)
      end
    end
    if n == 0 then error("bad argument #1 to '" .. name .. "' (number expected, got no value)", 2) end
    return py_bitop(name, ...)
  end
end
rawset(G, 'bit', bit)

-- The Python callbacks are userdata to Lua; scripts see them as functions, as Redis's C functions are.
local callbacks = {}
for _, f in ipairs({py_call, py_pcall, py_acl_check, py_sha1hex, py_log, py_setresp, py_random, py_randomseed,
                    py_json_encode, py_json_decode}) do callbacks[f] = true end
local lua_type = type
rawset(G, 'type', function(v)
  local t = lua_type(v)
  if t == 'userdata' and callbacks[v] then return 'function' end
  return t
end)

-- cjson (lua-cjson API subset: encode, decode, null), computed in Python.
rawset(G, 'cjson', {encode = py_json_encode, decode = py_json_decode, null = json_null})

-- Globals protection (Redis 7 makes _G read-only; stock Lua has no read-only tables, so a metatable does it).
local function readonly_error() error('Attempt to modify a readonly table', 2) end
local globals_mt = {
  __index = function(_, k)
    -- lupa itself reads globals (debug.traceback) from C: let those see nil, only Lua code gets the error.
    local caller = dbg.getinfo(2, 'S')
    if caller == nil or caller.what == 'C' then return nil end
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = readonly_error,
  __metatable = false,
}
rawset(G, 'rawset', function(t, k, v)
  if t == G or t == redis then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end)
local plain_setmetatable = setmetatable
rawset(G, 'setmetatable', function(t, mt)
  if t == G or t == redis then error('Attempt to modify a readonly table', 0) end
  return plain_setmetatable(t, mt)
end)
setmetatable(G, globals_mt)
setmetatable(redis, {__newindex = readonly_error, __metatable = false})

-- Running ----------------------------------------------------------------------------------------------------------
local function arm(max_ticks, msg)
  ticks, ticks_max, aborted, abort_msg = 0, max_ticks, false, msg
  dbg.sethook(hook, '', hook_every)
end
local function disarm()
  dbg.sethook()
end

local function compile(body, chunkname)
  return loadstring(body, chunkname)
end

local function run_script(fn, keys, argv, max_ticks, msg)
  rawset(G, 'KEYS', keys)
  rawset(G, 'ARGV', argv)
  arm(max_ticks, msg)
  local ok, res = lua_xpcall(fn, err_handler)
  disarm()
  rawset(G, 'KEYS', nil)
  rawset(G, 'ARGV', nil)
  return ok, res
end

local function run_function(fn, keys, argv, max_ticks, msg)
  arm(max_ticks, msg)
  local ok, res = lua_xpcall(function() return fn(keys, argv) end, err_handler)
  disarm()
  return ok, res
end

-- Function libraries: the chunk runs with a restricted API (register_function, log, no redis.call, no math...);
-- functions it defines see the full sandbox when they run (the environment switches on `loading`).
local loading = false
local registered, registered_order
local KNOWN_FLAGS = {['no-writes'] = true, ['allow-oom'] = true, ['allow-stale'] = true, ['no-cluster'] = true,
                     ['allow-cross-slot-keys'] = true}
local function reg_error(msg) error(error_table(msg), 0) end
local function register(name, callback, flags, description)
  if type(name) ~= 'string' then reg_error('function_name argument given to redis.register_function must be a string') end
  if type(callback) ~= 'function' then reg_error('callback argument given to redis.register_function must be a function') end
  local flag_list = {}
  if flags ~= nil then
    if type(flags) ~= 'table' then reg_error('flags argument to redis.register_function must be a table representing function flags') end
    for _, f in ipairs(flags) do
      if type(f) ~= 'string' or not KNOWN_FLAGS[f] then reg_error('unknown flag given') end
      flag_list[#flag_list + 1] = f
    end
  end
  if description ~= nil and type(description) ~= 'string' then
    reg_error('description argument given to redis.register_function must be a string')
  end
  if not str_find(name, '^[%w_]+$') then
    reg_error('Function names can only contain letters, numbers, or underscores(_) and must be at least one character long')
  end
  if registered[name] then reg_error('Function already exists in the library') end
  registered[name] = {callback = callback, flags = flag_list, description = description}
  registered_order[#registered_order + 1] = name
end
local load_redis = {
  register_function = function(...)
    local n = select('#', ...)
    if n == 1 then
      local t = ...
      if type(t) ~= 'table' then reg_error('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).') end
      local name, callback, flags, description
      for k, v in pairs(t) do
        if k == 'function_name' then name = v
        elseif k == 'callback' then callback = v
        elseif k == 'flags' then flags = v
        elseif k == 'description' then description = v
        else reg_error('unknown argument given to redis.register_function') end
      end
      if name == nil then reg_error('redis.register_function must get a function name argument') end
      if callback == nil then reg_error('redis.register_function must get a callback argument') end
      return register(name, callback, flags, description)
    end
    if n ~= 2 then reg_error('wrong number of arguments to redis.register_function') end
    local name, callback = ...
    if type(name) ~= 'string' then reg_error('first argument to redis.register_function must be a string') end
    if type(callback) ~= 'function' then reg_error('second argument to redis.register_function must be a function') end
    return register(name, callback, nil, nil)
  end,
  log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
}
setmetatable(load_redis, globals_mt)
local load_globals = {redis = load_redis}
for _, name in ipairs({'assert', 'error', 'ipairs', 'next', 'pairs', 'pcall', 'xpcall', 'rawequal', 'rawget',
                       'select', 'tonumber', 'tostring', 'type', 'unpack', 'string', 'table', '_VERSION'}) do
  load_globals[name] = rawget(G, name)
end
local library_env = setmetatable({}, {
  __index = function(_, k)
    if loading then
      local v = load_globals[k]
      if v == nil then error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2) end
      return v
    end
    local v = rawget(G, k)
    if v == nil then error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2) end
    return v
  end,
  __newindex = readonly_error,
  __metatable = false,
})
load_globals._G = library_env

local function load_library(code, max_ticks, msg)
  local fn, err = loadstring(code, '@user_function')
  if not fn then return false, err end
  setfenv(fn, library_env)
  registered, registered_order = {}, {}
  loading = true
  arm(max_ticks, msg)
  local ok, res = lua_xpcall(fn, err_handler)
  disarm()
  loading = false
  if not ok then return true, nil, res end
  local out = {}
  for j, name in ipairs(registered_order) do out[j] = {name, registered[name]} end
  return true, out
end

return {compile = compile, run_script = run_script, run_function = run_function, load_library = load_library,
        json_null = json_null, is_json_null = function(v) return v == json_null end}
"""
