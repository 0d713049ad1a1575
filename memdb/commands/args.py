"""Typed argument parsing with Redis's exact acceptance rules and error texts (fakeredis style, but functions).

Numbers
-------
- `parse_int` is Redis's string2ll: optional '-', no '+', no spaces, no leading zeros ("0" alone is fine),
  fewer than 21 characters, within signed 64 bits. Anything else -> "ERR value is not an integer or out of range"
  (or the caller's message).
- `parse_float` is getDoubleFromObject (C strtod): accepts "inf"/"-infinity", hex floats ("0x1p3"), a leading '+',
  exponents; rejects NaN, leading whitespace, trailing garbage, overflow to +-HUGE_VAL and underflow to zero.
- `LongDouble` emulates the x86-64 80-bit `long double` (64-bit significand) that INCRBYFLOAT/HINCRBYFLOAT use,
  with `format_long_double` reproducing ld2string(LD_STR_HUMAN) ("%.17Lf", trailing zeros trimmed). Exact rational
  arithmetic (fractions.Fraction) rounded to 64 significant bits after every step gives bit-identical results.

Options
-------
`upper(arg)` folds an option name for comparison (`upper(args[i]) == b"NX"`). Option loops stay in the handlers:
Redis's option grammars are irregular (SET's GET/KEEPTTL combos, EXPIRE's NX|XX|GT|LT), a generic parser would
hide the exact order in which Redis reports errors.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

from memdb.commands import messages
from memdb.commands.spec import CommandError

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
LONG_STR_SIZE = 21                     # util.h: strings of 21+ chars are never valid 64-bit integers
MAX_LONG_DOUBLE_CHARS = 5 * 1024       # util.h: string2ld refuses longer input
PROTO_MAX_BULK_LEN = 512 * 1024 * 1024  # proto-max-bulk-len default: the largest string value

_INT_RE = re.compile(rb"(?:0|-?[1-9][0-9]*)\Z")


def upper(arg: bytes) -> bytes:
    return arg.upper()


def is_int(arg: bytes) -> bool:
    """Redis string2ll acceptance (also what makes a string value 'int' encoded)."""
    if len(arg) >= LONG_STR_SIZE or not _INT_RE.match(arg):
        return False
    return INT64_MIN <= int(arg) <= INT64_MAX


def parse_int(arg: bytes, message: str = messages.NOT_INTEGER) -> int:
    if not is_int(arg):
        raise CommandError(message)
    return int(arg)


def parse_int_range(arg: bytes, low: int, high: int, message: str | None = None) -> int:
    """getRangeLongFromObjectOrReply: NOT_INTEGER if unparsable, then the range message."""
    value = parse_int(arg)
    if not low <= value <= high:
        raise CommandError(message if message is not None else messages.out_of_range_between(low, high))
    return value


def parse_positive_int(arg: bytes, message: str = messages.OUT_OF_RANGE_POSITIVE) -> int:
    """getPositiveLongFromObjectOrReply (>= 0)."""
    value = parse_int(arg)
    if value < 0:
        raise CommandError(message)
    return value


def parse_int32(arg: bytes, message: str = messages.NOT_INTEGER) -> int:
    """getIntFromObjectOrReply: a C int (DB indexes)."""
    value = parse_int(arg, message)
    if not -(1 << 31) <= value < (1 << 31):
        raise CommandError(message)
    return value


# -- C strtod -----------------------------------------------------------------------------------------------------
_DEC_RE = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_HEX_RE = re.compile(rb"([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)\Z")
_INF_RE = re.compile(rb"([+-]?)(?:inf|infinity)\Z", re.IGNORECASE)


def _strtod_exact(arg: bytes) -> Fraction | float | None:
    """The exact value C's strtod would read from the whole of arg: a Fraction, +-inf, or None if strtod would
    stop early (trailing garbage, whitespace, empty) or read NaN."""
    if not arg or arg[:1].isspace():
        return None
    if _DEC_RE.match(arg):
        text = arg.decode()
        mantissa, _, exponent = text.lower().partition("e")
        # Huge exponents: clamp so Fraction stays cheap; the value is far outside any float range either way.
        exp = int(exponent) if exponent else 0
        digits = mantissa.lstrip("+-").replace(".", "")
        if not digits.strip("0"):
            return Fraction(0)
        exp = max(min(exp, 100000), -100000)
        value = Fraction(mantissa) * Fraction(10) ** exp
        return value
    m = _HEX_RE.match(arg)
    if m:
        sign, body = m.group(1), m.group(2).decode().lower()
        mant, _, pexp = body.partition("p")
        int_part, _, frac_part = mant.partition(".")
        digits = (int_part + frac_part) or "0"
        exp = int(pexp) if pexp else 0
        exp = max(min(exp, 100000), -100000)
        value = Fraction(int(digits, 16)) / (16 ** len(frac_part)) * Fraction(2) ** exp
        return -value if sign == b"-" else value
    m = _INF_RE.match(arg)
    if m:
        return -math.inf if m.group(1) == b"-" else math.inf
    return None


def _fraction_to_double(value: Fraction) -> float:
    """Correctly rounded (ties to even) conversion, like strtod; +-inf on overflow."""
    try:
        return float(value)  # Fraction.__float__ is correctly rounded (int / int true division)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def parse_float(arg: bytes, message: str = messages.NOT_FLOAT) -> float:
    """getDoubleFromObject: a finite or infinite double, never NaN."""
    if _DEC_RE.match(arg):
        # Python's float() of a decimal string is correctly rounded, as strtod is: exact unless it overflows or
        # underflows to zero, which strtod reports as ERANGE (the slow exact path below decides those).
        value = float(arg)
        if value != 0 and not math.isinf(value):
            return value
    exact = _strtod_exact(arg)
    if exact is None:
        raise CommandError(message)
    if isinstance(exact, float):
        return exact
    value = _fraction_to_double(exact)
    if math.isinf(value) or (value == 0 and exact != 0):
        raise CommandError(message)   # ERANGE overflow to HUGE_VAL or underflow to zero
    return value


def is_float(arg: bytes) -> bool:
    try:
        parse_float(arg)
    except CommandError:
        return False
    return True


# -- 80-bit long double -------------------------------------------------------------------------------------------
LD_MANT_BITS = 64
LD_MIN_EXP = -16382          # smallest normal: 2**-16382
LD_MAX_EXP = 16384           # values >= 2**16384 overflow


class LongDouble:
    """An x87 extended-precision value: a Fraction already rounded to 64 significant bits, or +-inf."""
    __slots__ = ("value",)

    def __init__(self, value: Fraction | float):
        self.value = value

    @property
    def is_inf(self) -> bool:
        return isinstance(self.value, float) and math.isinf(self.value)

    def __add__(self, other: "LongDouble") -> "LongDouble":
        if self.is_inf or other.is_inf:
            total = float(self.value) + float(other.value)   # inf + -inf = nan; caller checks is_finite
            return LongDouble(total)
        return LongDouble(round_long_double(self.value + other.value))

    def is_finite(self) -> bool:
        return not (isinstance(self.value, float) and (math.isinf(self.value) or math.isnan(self.value)))

    @classmethod
    def from_int(cls, value: int) -> "LongDouble":
        return cls(round_long_double(Fraction(value)))


def round_long_double(value: Fraction) -> Fraction | float:
    """Round an exact value to the nearest 80-bit long double (ties to even), +-inf on overflow."""
    if value == 0:
        return Fraction(0)
    sign = -1 if value < 0 else 1
    mag = abs(value)
    num, den = mag.numerator, mag.denominator
    # e = floor(log2(mag)), corrected for the estimate from bit lengths
    e = num.bit_length() - den.bit_length()
    if Fraction(2) ** e > mag:
        e -= 1
    elif Fraction(2) ** (e + 1) <= mag:
        e += 1
    if e >= LD_MAX_EXP:
        return sign * math.inf
    # quantum: 2**(e - 63) for normals; subnormals share the quantum of the smallest normal
    q = max(e, LD_MIN_EXP) - (LD_MANT_BITS - 1)
    scaled = mag / Fraction(2) ** q if q >= 0 else mag * (1 << -q)
    n = scaled.numerator // scaled.denominator
    rem = scaled - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1):
        n += 1
    result = Fraction(n) * Fraction(2) ** q
    if result >= Fraction(2) ** LD_MAX_EXP:
        return sign * math.inf
    return sign * result


def parse_long_double(arg: bytes, message: str = messages.NOT_FLOAT) -> LongDouble:
    """string2ld: strtold over the whole argument (< 5 KiB), rejecting NaN, whitespace, overflow, underflow."""
    if len(arg) >= MAX_LONG_DOUBLE_CHARS:
        raise CommandError(message)
    exact = _strtod_exact(arg)
    if exact is None:
        raise CommandError(message)
    if isinstance(exact, float):
        return LongDouble(exact)
    rounded = round_long_double(exact)
    if isinstance(rounded, float) or (rounded == 0 and exact != 0):
        raise CommandError(message)
    return LongDouble(rounded)


def format_long_double(value: LongDouble) -> bytes:
    """ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros (and a bare '.') removed, "-0" -> "0"."""
    exact = value.value
    assert isinstance(exact, Fraction), "callers reject inf/nan first"
    sign = "-" if exact < 0 else ""
    scaled = abs(exact) * 10 ** 17
    n = scaled.numerator // scaled.denominator
    rem = scaled - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1):
        n += 1
    digits = str(n).rjust(18, "0")
    text = digits[:-17] + "." + digits[-17:]
    text = text.rstrip("0").rstrip(".")
    if text == "0":
        sign = ""
    return (sign + text).encode()


def format_double(value: float) -> bytes:
    """Redis 7.0's "%.17g" for doubles (addReplyDouble in RESP2, ZSCORE-like bulk strings), inf as inf/-inf."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return (b"%.17g" % value)


# -- timeouts (blocking commands) ---------------------------------------------------------------------------------
def parse_timeout_ms(arg: bytes, seconds: bool = True) -> int:
    """getTimeoutFromObjectOrReply, relative: 0 means block forever. Seconds are a long double, truncated to ms."""
    if seconds:
        ld = parse_long_double(arg, messages.TIMEOUT_NOT_FLOAT)
        if not ld.is_finite():
            # C casts +-inf*1000 to a long long (undefined; x86 gives LLONG_MIN), which Redis reports as negative
            raise CommandError(messages.TIMEOUT_NEGATIVE)
        product = ld.value * 1000
        timeout_ms = math.trunc(product)
        if timeout_ms > INT64_MAX or timeout_ms < INT64_MIN:
            raise CommandError(messages.TIMEOUT_NEGATIVE)
    else:
        timeout_ms = parse_int(arg, messages.TIMEOUT_NOT_INTEGER)
    if timeout_ms < 0:
        raise CommandError(messages.TIMEOUT_NEGATIVE)
    return timeout_ms
