"""Every error reply text, copied exactly from Redis 7.0 (server.c shared objects, object.c, t_*.c, db.c...).

A flat module: constants for fixed texts, small functions for formatted ones. Raise them as
`CommandError(messages.X)`; the protocol edge adds the leading '-'. Texts are the full message including the
error code prefix (ERR, WRONGTYPE, BUSYKEY ...). Append new ones at the end of the matching section.
"""
from __future__ import annotations

# -- shared objects (server.c createSharedObjects) ---------------------------------------------------------------
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NO_SUCH_KEY = "ERR no such key"
SAME_OBJECT = "ERR source and destination objects are the same"
INDEX_OUT_OF_RANGE = "ERR index out of range"
BUSYKEY = "BUSYKEY Target key name already exists."
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
READONLY_REPLICA = "READONLY You can't write against a read only replica."
OOM = "OOM command not allowed when used memory > 'maxmemory'."
NOAUTH = "NOAUTH Authentication required."

# -- number parsing (object.c, util.c) ---------------------------------------------------------------------------
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OUT_OF_RANGE = "ERR value is out of range"
OUT_OF_RANGE_POSITIVE = "ERR value is out of range, must be positive"
OVERFLOW = "ERR increment or decrement would overflow"
NAN_OR_INFINITY = "ERR increment would produce NaN or Infinity"
HASH_NOT_INTEGER = "ERR hash value is not an integer"
HASH_NOT_FLOAT = "ERR hash value is not a float"
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
TIMEOUT_OUT_OF_RANGE = "ERR timeout is out of range"


def out_of_range_between(low: int, high: int) -> str:
    """getRangeLongFromObjectOrReply with no custom message (HRANDFIELD/SRANDMEMBER/ZRANDMEMBER count)."""
    return f"ERR value is out of range, value must between {low} and {high}"


def out_of_range_must_be_between(low: int, high: int) -> str:
    """The other variant used by a few commands (e.g. LPOS RANK/COUNT, BITFIELD...)."""
    return f"ERR value is out of range, must be between {low} and {high}"


# -- command dispatch (server.c processCommand) ------------------------------------------------------------------
def _sanitize(text: str) -> str:
    # addReplyErrorFormat replaces newlines so that the error stays one protocol line.
    return text.replace("\r", " ").replace("\n", " ")


def _arg_text(arg: bytes | str) -> str:
    return arg.decode("utf-8", "surrogateescape") if isinstance(arg, bytes) else arg


def unknown_command(name: bytes | str, args: list[bytes] | tuple[bytes, ...]) -> str:
    """ERR unknown command 'foo', with args beginning with: 'a' 'b' (each arg quoted, followed by a space).
    Redis appends args while the collected text is < 128 bytes, each truncated to what is left of 128."""
    collected = ""
    for arg in args:
        if len(collected) >= 128:
            break
        collected += "'" + _arg_text(arg)[:128 - len(collected)] + "' "
    return _sanitize(f"ERR unknown command '{_arg_text(name)[:128]}', with args beginning with: {collected}")


def unknown_subcommand(subcommand: bytes | str, command: str) -> str:
    """ERR unknown subcommand 'foo'. Try OBJECT HELP."""
    return _sanitize(f"ERR unknown subcommand '{_arg_text(subcommand)[:128]}'. Try {command.upper()} HELP.")


def wrong_arity(fullname: str) -> str:
    """fullname is the table name: 'get', or 'object|encoding' for a subcommand."""
    return f"ERR wrong number of arguments for '{fullname}' command"


# -- keys, expiry, databases (db.c, expire.c) --------------------------------------------------------------------
def invalid_expire_time(command: str) -> str:
    return f"ERR invalid expire time in '{command}' command"


def unsupported_option(option: bytes | str) -> str:
    return _sanitize(f"ERR Unsupported option {_arg_text(option)}")


NX_XX_GT_LT = "ERR NX and XX, GT or LT options at the same time are not compatible"
GT_AND_LT = "ERR GT and LT options at the same time are not compatible"
DB_INDEX_OUT_OF_RANGE = "ERR DB index is out of range"
INVALID_FIRST_DB_INDEX = "ERR invalid first DB index"
INVALID_SECOND_DB_INDEX = "ERR invalid second DB index"
INVALID_CURSOR = "ERR invalid cursor"
OBJECT_FREQ_NO_LFU = ("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that "
                      "when switching between policies at runtime LRU and LFU data will take some time to adjust.")
OBJECT_IDLETIME_LFU = ("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
                       "switching between policies at runtime LRU and LFU data will take some time to adjust.")
NUMKEYS_GREATER_THAN_ARGS = "ERR Number of keys can't be greater than number of args"
NUMKEYS_POSITIVE = "ERR numkeys should be greater than 0"

# -- strings (t_string.c) ----------------------------------------------------------------------------------------
STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
LCS_NOT_STRINGS = "ERR The specified keys must contain string values"
LCS_LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX."
LCS_TOO_MUCH_MEMORY = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
DECREMENT_OVERFLOW = "ERR decrement would overflow"

# -- hashes (t_hash.c) -------------------------------------------------------------------------------------------
HASH_INCR_NAN_OR_INFINITY = "ERR value is NaN or Infinity"

# -- lists / sets / zsets (t_list.c, t_set.c, t_zset.c): appended by their module owners -------------------------
LPOS_RANK_ZERO = ("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use "
                  "negative to start from the end of the list")
LPOS_COUNT_NEGATIVE = "ERR COUNT can't be negative"
LPOS_MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"
COUNT_POSITIVE = "ERR count should be greater than 0"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"
ZADD_XX_NX = "ERR XX and NX options at the same time are not compatible"
ZADD_GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
ZADD_INCR_PAIRS = "ERR INCR option supports a single increment-element pair"
ZSCORE_NAN = "ERR resulting score is not a number (NaN)"
MIN_MAX_NOT_FLOAT = "ERR min or max is not a float"
MIN_MAX_NOT_LEX = "ERR min or max not valid string range item"
WEIGHT_NOT_FLOAT = "ERR weight value is not a float"
ZRANGE_LIMIT_BY_RANK = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
ZRANGE_WITHSCORES_BYLEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"


def at_least_one_input_key(command: str) -> str:
    """ZUNION/ZINTER/ZDIFF(STORE)/ZINTERCARD with numkeys < 1."""
    return f"ERR at least 1 input key is needed for '{command}' command"

# -- bitmaps (bitops.c) ------------------------------------------------------------------------------------------
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
BITPOS_BIT = "ERR The bit argument must be 1 or 0."
BITOP_NOT_SINGLE_KEY = "ERR BITOP NOT must be called with a single source key."
BITFIELD_OVERFLOW_TYPE = "ERR Invalid OVERFLOW type specified"
BITFIELD_TYPE = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
BITFIELD_RO_GET_ONLY = "ERR BITFIELD_RO only supports the GET subcommand"

# -- hyperloglog (hyperloglog.c) ---------------------------------------------------------------------------------
HLL_INVALID = "WRONGTYPE Key is not a valid HyperLogLog string value."
HLL_CORRUPTED = "INVALIDOBJ Corrupted HLL object detected"

# -- sort (sort.c) -----------------------------------------------------------------------------------------------
SORT_NOT_DOUBLE = "ERR One or more scores can't be converted into double"
SORT_RO_STORE = "ERR syntax error"

# -- dump / restore (cluster.c) ----------------------------------------------------------------------------------
DUMP_PAYLOAD_INVALID = "ERR DUMP payload version or checksum are wrong"
RESTORE_BAD_DATA = "ERR Bad data format"
RESTORE_INVALID_TTL = "ERR Invalid TTL value, must be >= 0"
RESTORE_INVALID_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0"
RESTORE_INVALID_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255"

# -- streams (t_stream.c) ----------------------------------------------------------------------------------------
STREAM_INVALID_ID = "ERR Invalid stream ID specified as stream command argument"
STREAM_ID_ZERO = "ERR The ID specified in XADD must be greater than 0-0"
STREAM_ID_TOO_SMALL = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
STREAM_EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
STREAM_ELEMENTS_TOO_LARGE = "ERR Elements are too large to be stored"
STREAM_MAXLEN_AND_MINID = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
STREAM_MAXLEN_NEGATIVE = "ERR The MAXLEN argument must be >= 0."
STREAM_LIMIT_NEGATIVE = "ERR The LIMIT argument must be >= 0."
STREAM_LIMIT_WITHOUT_STRATEGY = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
STREAM_XTRIM_WITHOUT_STRATEGY = "ERR syntax error, XTRIM must be called with a trimming strategy"
STREAM_LIMIT_WITHOUT_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
STREAM_INVALID_START = "ERR invalid start ID for the interval"
STREAM_INVALID_END = "ERR invalid end ID for the interval"
XREAD_UNBALANCED = ("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
                    "specified.")
XREAD_GROUP_OPTION = "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
XREAD_NOACK_OPTION = "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
XREADGROUP_MISSING_GROUP = "ERR Missing GROUP option for XREADGROUP"
XREADGROUP_DOLLAR = ("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of "
                     "this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would "
                     "just return an empty result set.")
XREAD_GREATER_ID = ("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> "
                    "<consumer> option.")
XGROUP_KEY_MISSING = ("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to "
                      "use the MKSTREAM option to create an empty stream automatically.")
XGROUP_ENTRIESREAD = "ERR value for ENTRIESREAD must be positive or -1"
BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
XSETID_ENTRIES_ADDED_NEGATIVE = "ERR entries_added must be positive"
XSETID_SMALLER_THAN_MAX_DELETED_ARG = ("ERR The ID specified in XSETID is smaller than the provided "
                                       "max_deleted_entry_id")
XSETID_SMALLER_THAN_TOP = "ERR The ID specified in XSETID is smaller than the target stream top item"
XSETID_ENTRIES_ADDED_SMALL = ("ERR The entries_added specified in XSETID is smaller than the target stream "
                              "length")
XCLAIM_MIN_IDLE = "ERR Invalid min-idle-time argument for XCLAIM"
XCLAIM_IDLE = "ERR Invalid IDLE option argument for XCLAIM"
XCLAIM_TIME = "ERR Invalid TIME option argument for XCLAIM"
XCLAIM_RETRYCOUNT = "ERR Invalid RETRYCOUNT option argument for XCLAIM"
XAUTOCLAIM_MIN_IDLE = "ERR Invalid min-idle-time argument for XAUTOCLAIM"
XAUTOCLAIM_COUNT = "ERR COUNT must be > 0"


def xclaim_unrecognized_option(option: bytes) -> str:
    return _sanitize(f"ERR Unrecognized XCLAIM option '{_arg_text(option)}'")


def nogroup_key_or_group(key: bytes, group: bytes, suffix: str = "") -> str:
    """XPENDING/XCLAIM/XAUTOCLAIM (suffix '') and XREADGROUP (suffix ' in XREADGROUP with GROUP option')."""
    return _sanitize(f"NOGROUP No such key '{_arg_text(key)}' or consumer group '{_arg_text(group)}'{suffix}")


def nogroup_for_key(group: bytes, key: bytes) -> str:
    """XGROUP SETID/CREATECONSUMER/DELCONSUMER, XINFO CONSUMERS."""
    return _sanitize(f"NOGROUP No such consumer group '{_arg_text(group)}' for key name '{_arg_text(key)}'")


def subcommand_syntax(subcommand: bytes, command: bytes) -> str:
    """addReplySubcommandSyntaxError: the subcommand as typed, the command upper-cased."""
    return _sanitize(f"ERR unknown subcommand or wrong number of arguments for '{_arg_text(subcommand)[:128]}'. "
                     f"Try {_arg_text(command).upper()} HELP.")


# -- scripting and functions (eval.c, script.c, script_lua.c, functions.c, function_lua.c) -------------------------
NUMKEYS_NEGATIVE = "ERR Number of keys can't be negative"
SCRIPT_WRITE_FLAG_WITH_RO = "ERR Can not execute a script with write flag using *_ro command."
NOTBUSY = "NOTBUSY No scripts in execution right now."
SCRIPT_FLUSH_OPTION = "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
SCRIPT_INVALID_SHEBANG = "ERR Invalid script shebang"
SCRIPT_REPLY_TOO_DEEP = "ERR reached lua stack limit"
SCRIPT_CALL_NO_ARGS = "ERR Please specify at least one argument for this redis lib call"
SCRIPT_CALL_BAD_ARG = "ERR Lua redis lib command arguments must be strings or integers"
SCRIPT_CALL_UNKNOWN = "ERR Unknown Redis command called from script"
SCRIPT_CALL_ARITY = "ERR Wrong number of args calling Redis command from script"
SCRIPT_CALL_NOSCRIPT = "ERR This Redis command is not allowed from script"
SCRIPT_CALL_WRITE_IN_RO = "ERR Write commands are not allowed from read-only scripts."
FUNCTION_LIBRARY_NAME_INVALID = ("ERR Library names can only contain letters, numbers, or underscores(_) and must "
                                 "be at least one character long")
FUNCTION_NOT_FOUND = "ERR Function not found"
FUNCTION_BAD_NUMKEYS = "ERR Bad number of keys provided"
FUNCTION_LIBRARY_NOT_FOUND = "ERR Library not found"
FUNCTION_FLUSH_OPTION = "ERR FUNCTION FLUSH only supports SYNC|ASYNC option"
FUNCTION_RESTORE_POLICY = "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
FUNCTION_MISSING_METADATA = "ERR Missing library metadata"
FUNCTION_NAME_NOT_GIVEN = "ERR Library name was not given"
FUNCTION_LIBRARYNAME_NOT_GIVEN = "ERR library name argument was not given"
