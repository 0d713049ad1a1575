r"""RESP request parser: bytes in, argument lists out. Bring-your-own-I/O, in the style of h11.

Theory of operation
-------------------
A connection owns one `RequestParser`. The I/O layer calls `feed(data)` with whatever the socket gave it and gets
back the complete requests in that data (zero, one, or thousands when the client pipelines), each a `list[bytes]`.
Partial input is kept until the rest arrives. The parser never does I/O and never looks at a clock.

Two request forms, exactly as Redis 7.0 `processMultibulkBuffer` / `processInlineBuffer` (networking.c) read them:
  multibulk  `*<count>\r\n` then count times `$<len>\r\n<len bytes>\r\n`
  inline     anything else: one line up to '\n' (a trailing '\r' is dropped), split like `sdssplitargs`
             (whitespace separated, "double quotes" with \n \r \t \b \a \xHH escapes, 'single quotes' with \').

Limits are checked on the *header*, before any payload is buffered or any list is sized from it, so a client that
sends `*1\r\n$999999999999\r\n` is refused at once instead of making us wait for (or allocate) a terabyte:
  bulk length      > max_bulk_len (proto-max-bulk-len, 512 MB)   -> "invalid bulk length"
  multibulk count  > max_multibulk_len (1024*1024)               -> "invalid multibulk length"
  a header or inline line longer than 64 KB without its newline  -> "too big ..."
A protocol error is final: `feed` returns the requests that were complete before the bad byte and sets `error`
(a `ProtocolError` whose `message` is Redis's reply text); the connection replies it and closes, as Redis does.
Later calls to `feed` return nothing.

Why not hand the bytes straight to `hiredis.Reader`? hiredis sizes an array from its header as soon as it sees it
(`*2147483647` allocates a 16 GB list) and accepts replies that are not requests (`:1`, nested arrays, RESP3
types). Finding request boundaries safely means reading every header anyway, and once the headers are read the
payloads are one slice each: measured, the single Python pass is faster than the same pass followed by
hiredis (see tests/unit/test_protocol_parser.py::test_parser_throughput for the numbers on this machine).
hiredis stays the parser of *replies* (clients, tests).

A chunk that is nothing but complete requests with canonical headers, which is what clients send, is read by
`_whole_requests` first: one `split` at CRLFs and a length check per argument, ~0.7 us for a GET against ~1.4 us
for the general pass (bench/hotpath.py's GET went 4.9 -> 4.5 us). Anything else, including every input the
general pass would refuse, falls through to it.

Large payloads are not re-joined on every chunk: once a bulk header says N bytes are coming, chunks are only
collected until N have arrived, then joined once (linear, not quadratic, in the value size).
"""
from __future__ import annotations

__all__ = ["ProtocolError", "RequestParser", "split_inline", "PROTO_INLINE_MAX_SIZE",
           "DEFAULT_MAX_BULK_LEN", "DEFAULT_MAX_MULTIBULK_LEN"]

PROTO_INLINE_MAX_SIZE = 64 * 1024          # Redis PROTO_INLINE_MAX_SIZE: header/inline line without newline
DEFAULT_MAX_BULK_LEN = 512 * 1024 * 1024   # proto-max-bulk-len
DEFAULT_MAX_MULTIBULK_LEN = 1024 * 1024    # arguments per request

_STAR = 42       # '*'
_DOLLAR = 36     # '$'
_MINUS = 45      # '-'
_ZERO = 48       # '0'


class ProtocolError(Exception):
    """Malformed input. `message` is the full error reply text ('ERR Protocol error: ...')."""

    def __init__(self, detail: str):
        self.message = "ERR Protocol error: " + detail
        super().__init__(self.message)


# Every length and count below 10,000 in the one spelling string2ll accepts: one dict lookup instead of checking
# and converting the digits (most requests have only such numbers in their headers).
_SMALL_NUMBERS = {str(i).encode(): i for i in range(10_000)}


def _strict_int(text: bytes) -> int | None:
    """Redis `string2ll`: optional '-', no '+', no spaces, no leading zeros, no '-0'. None if invalid."""
    if text.isdigit():
        if text[0] == _ZERO and len(text) > 1:
            return None
        return int(text)
    if len(text) > 1 and text[0] == _MINUS and text[1] != _ZERO:
        digits = text[1:]
        if digits.isdigit():
            return -int(digits)
    return None


class RequestParser:
    __slots__ = ("max_bulk_len", "max_multibulk_len", "error", "_buf", "_chunks", "_chunks_len", "_want",
                 "_args", "_remaining")

    def __init__(self, max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
                 max_multibulk_len: int = DEFAULT_MAX_MULTIBULK_LEN):
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        self.error: ProtocolError | None = None
        self._buf = b""                        # unparsed input, starting at a request or element header
        self._chunks: list[bytes] = []         # input collected while waiting for `_want` bytes
        self._chunks_len = 0
        self._want = 0                         # bytes of input needed before parsing can progress (0: unknown)
        self._args: list[bytes] | None = None  # the multibulk request being read
        self._remaining = 0                    # its elements still to read

    @property
    def buffered_len(self) -> int:
        """Bytes held for an incomplete request (the I/O layer may bound it)."""
        return len(self._buf) + self._chunks_len

    def feed(self, data: bytes) -> list[list[bytes]]:
        if self.error is not None:
            return []
        if self._want:
            self._chunks.append(data)
            self._chunks_len += len(data)
            if len(self._buf) + self._chunks_len < self._want:
                return []
            data = self._buf + b"".join(self._chunks)
            self._chunks = []
            self._chunks_len = 0
            self._want = 0
        elif self._buf:
            data = self._buf + data
        elif self._args is None and len(data) <= self.max_bulk_len:
            requests = _whole_requests(data, self.max_multibulk_len)
            if requests is not None:
                return requests
        out: list[list[bytes]] = []
        try:
            pos = self._parse(data, out)
        except ProtocolError as exc:
            self.error = exc
            self._buf = b""
            self._args = None
            return out
        self._buf = data[pos:] if pos < len(data) else b""
        return out

    def _parse(self, data: bytes, out: list) -> int:
        """Append complete requests in data to out; return the position where unparsed input starts."""
        n = len(data)
        pos = 0
        args = self._args
        remaining = self._remaining
        max_bulk_len = self.max_bulk_len
        find = data.find
        while True:
            if args is None:
                if pos >= n:
                    break
                if data[pos] != _STAR:
                    line_end = find(b"\n", pos)
                    if line_end < 0:
                        if n - pos > PROTO_INLINE_MAX_SIZE:
                            raise ProtocolError("too big inline request")
                        break
                    line = data[pos:line_end - 1] if line_end > pos and data[line_end - 1] == 13 \
                        else data[pos:line_end]
                    pos = line_end + 1
                    inline_args = split_inline(line)
                    if inline_args is None:
                        raise ProtocolError("unbalanced quotes in request")
                    if inline_args:
                        out.append(inline_args)
                    continue
                # Redis looks for '\r' and then skips two bytes without checking the second one.
                cr = find(b"\r", pos)
                if cr < 0:
                    if n - pos > PROTO_INLINE_MAX_SIZE:
                        raise ProtocolError("too big mbulk count string")
                    break
                if cr + 1 >= n:
                    break
                header = data[pos + 1:cr]
                count = _SMALL_NUMBERS.get(header)
                if count is None:
                    count = _strict_int(header)
                if count is None or count > self.max_multibulk_len:
                    raise ProtocolError("invalid multibulk length")
                pos = cr + 2
                if count <= 0:
                    continue                     # '*0' and '*-1' are skipped silently, as Redis does
                args = []
                remaining = count
            while remaining:
                if pos >= n:
                    break
                if data[pos] != _DOLLAR:
                    raise ProtocolError("expected '$', got '%s'" % chr(data[pos]))
                cr = find(b"\r", pos)
                if cr < 0:
                    if n - pos > PROTO_INLINE_MAX_SIZE:
                        raise ProtocolError("too big bulk count string")
                    break
                if cr + 1 >= n:
                    break
                digits = data[pos + 1:cr]
                size = _SMALL_NUMBERS.get(digits)
                if size is None:
                    # string2ll's rules inlined (this is the per-argument hot path): digits only, no leading zero;
                    # a negative length is as invalid as a malformed one.
                    if not digits.isdigit() or (digits[0] == _ZERO and cr - pos > 2):
                        raise ProtocolError("invalid bulk length")
                    size = int(digits)
                if size > max_bulk_len:
                    raise ProtocolError("invalid bulk length")
                start = cr + 2
                end = start + size
                if end + 2 > n:
                    # Payload incomplete: keep from this element's header, and wait until it is all here.
                    self._want = end + 2 - pos
                    break
                args.append(data[start:end])
                pos = end + 2                    # Redis skips the CRLF without checking it
                remaining -= 1
            if remaining:
                break
            out.append(args)
            args = None
        self._args = args
        self._remaining = remaining
        return pos


# The fast path's spellings: "*<count>" and "$<len>" headers with the numbers above (a count of 0 is the general
# pass's: Redis skips such a request).
_COUNT_HEADERS = {b"*" + digits: n for digits, n in _SMALL_NUMBERS.items() if n}
_BULK_HEADERS = {b"$" + digits: n for digits, n in _SMALL_NUMBERS.items()}


def _whole_requests(data: bytes, max_multibulk_len: int) -> list[list[bytes]] | None:
    """The requests in data if it is nothing but complete multibulk requests with canonical headers (what clients
    send, and a chunk without pipelining is one such request), else None and the general pass reads it.

    Splitting at every CRLF is safe: where a header promises n bytes and the part after it has exactly n, that
    part is the payload (it is followed by the CRLF found first), so the walk stays on the request boundaries; a
    payload containing a CRLF makes a length differ, and anything unusual goes to the general pass, which gives
    Redis's exact errors. The caller has checked that data is no longer than a bulk may be."""
    parts = data.split(b"\r\n")
    end = len(parts) - 1
    if parts[end]:
        return None                              # it does not end with a CRLF: a request is incomplete
    bulk_headers = _BULK_HEADERS
    out = []
    i = 0
    while i < end:
        count = _COUNT_HEADERS.get(parts[i])
        if count is None or count > max_multibulk_len:
            return None
        stop = i + 1 + 2 * count
        if stop > end:
            return None
        args = parts[i + 2:stop:2]
        for header, arg in zip(parts[i + 1:stop:2], args):
            if bulk_headers.get(header) != len(arg):
                return None
        out.append(args)
        i = stop
    return out


_SPACE_BYTES = frozenset(b" \n\r\t\x0b\x0c")      # C isspace(): skipped between arguments
_END_UNQUOTED = frozenset(b" \n\r\t\x00")        # what ends an unquoted argument in sdssplitargs
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_SPECIAL = (b'"', b"'", b"\x0b", b"\x0c", b"\x00")


def split_inline(line: bytes) -> list[bytes] | None:
    """Redis `sdssplitargs` (sds.c): the inline command line -> arguments, or None on unbalanced quotes."""
    for special in _SPECIAL:
        if special in line:
            break
    else:
        return line.split()                     # the common case: plain words
    # Redis reads the line as a C string: a NUL ends it.
    line = line.split(b"\x00", 1)[0]
    args: list[bytes] = []
    n = len(line)
    i = 0
    while True:
        while i < n and line[i] in _SPACE_BYTES:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            c = line[i] if i < n else 0
            if in_double:
                if c == 92 and i + 3 < n and line[i + 1] == 120 and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    current.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    # The closing quote must be followed by a space or nothing at all.
                    if i + 1 < n and line[i + 1] not in _SPACE_BYTES:
                        return None
                    i += 1
                    break
                elif i >= n:
                    return None
                else:
                    current.append(c)
            elif in_single:
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    current.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _SPACE_BYTES:
                        return None
                    i += 1
                    break
                elif i >= n:
                    return None
                else:
                    current.append(c)
            else:
                if i >= n or c in _END_UNQUOTED:
                    break
                if c == 34:
                    in_double = True
                elif c == 39:
                    in_single = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))
