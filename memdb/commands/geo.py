"""Geo commands (Redis 7.0 geo.c, geohash.c, geohash_helper.c) on sorted sets.

A position is stored as the zset score of its 52-bit geohash: latitude (range -85.05112878..85.05112878) and
longitude (-180..180) each scaled to 26 bits and interleaved, latitude in the even bits. Decoding returns the
centre of the geohash cell, so GEOPOS shows the same rounded coordinates as Redis, and GEODIST / GEOHASH follow.

Searches reproduce georadiusGeneric step by step: the step (cell size) estimated from the radius, the cell of the
centre and its 8 neighbours (some dropped when useless), each neighbour's score range scanned in ascending score
order, every candidate checked against the exact shape. That order is the reply order without ASC/DESC, and it
decides which members COUNT n ANY returns. Sorting is by distance only; Python's sort is stable, as glibc's qsort
(a merge sort) is for these sizes, so equal distances keep the scan order.

The sorted set value and ZADD are zsets.py's (GEOADD is ZADD with the geohash as score, as in Redis).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from memdb import notify
from memdb.commands import messages, zsets
from memdb.commands._typeutil import leading_flags, lookup, store_or_delete
from memdb.commands.args import LongDouble, format_long_double, parse_float, parse_int
from memdb.commands.declare import command
from memdb.commands.spec import NULL_ARRAY, CommandError, Context, Double
from memdb.commands.zset_type import ZSetValue

GEO_STEP_MAX = 26
GEO_LAT_MIN, GEO_LAT_MAX = -85.05112878, 85.05112878
GEO_LONG_MIN, GEO_LONG_MAX = -180.0, 180.0
EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37
D_R = math.pi / 180.0
_M64 = (1 << 64) - 1
_GEOALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"
UNITS = {b"M": 1.0, b"KM": 1000.0, b"FT": 0.3048, b"MI": 1609.34}

UNSUPPORTED_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
NEED_NUMERIC_RADIUS = "ERR need numeric radius"
NEED_NUMERIC_WIDTH = "ERR need numeric width"
NEED_NUMERIC_HEIGHT = "ERR need numeric height"
RADIUS_NEGATIVE = "ERR radius cannot be negative"
BOX_NEGATIVE = "ERR height or width cannot be negative"
COULD_NOT_DECODE_MEMBER = "ERR could not decode requested zset member"
COUNT_MUST_BE_POSITIVE = "ERR COUNT must be > 0"
ANY_REQUIRES_COUNT = "ERR the ANY argument requires COUNT argument"


def _invalid_pair(lon: float, lat: float) -> str:
    return "ERR invalid longitude,latitude pair %f,%f" % (lon, lat)


# -- geohash ----------------------------------------------------------------------------------------------------------
def _spread(v: int) -> int:
    """interleave64's bit spreading of a 32-bit value into the even bits of 64."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    v = (v | (v << 1)) & 0x5555555555555555
    return v


def _squash(v: int) -> int:
    v &= 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    v = (v | (v >> 16)) & 0x00000000FFFFFFFF
    return v


def encode(lon: float, lat: float, step: int = GEO_STEP_MAX, lat_min: float = GEO_LAT_MIN,
           lat_max: float = GEO_LAT_MAX, lon_min: float = GEO_LONG_MIN, lon_max: float = GEO_LONG_MAX) -> int | None:
    """geohashEncode: the interleaved bits (latitude in the even bits), or None outside the ranges."""
    if lon > GEO_LONG_MAX or lon < GEO_LONG_MIN or lat > GEO_LAT_MAX or lat < GEO_LAT_MIN:
        return None
    if lat < lat_min or lat > lat_max or lon < lon_min or lon > lon_max:
        return None
    lat_offset = (lat - lat_min) / (lat_max - lat_min) * float(1 << step)
    lon_offset = (lon - lon_min) / (lon_max - lon_min) * float(1 << step)
    return _spread(int(lat_offset)) | (_spread(int(lon_offset)) << 1)


def _decode_area(bits: int, step: int) -> tuple[float, float, float, float]:
    """geohashDecode on the WGS84 ranges: (lon_min, lon_max, lat_min, lat_max) of the cell."""
    ilat = _squash(bits)
    ilon = _squash(bits >> 1)
    lat_scale = GEO_LAT_MAX - GEO_LAT_MIN
    lon_scale = GEO_LONG_MAX - GEO_LONG_MIN
    cells = float(1 << step)
    return (GEO_LONG_MIN + (ilon * 1.0 / cells) * lon_scale,
            GEO_LONG_MIN + ((ilon + 1) * 1.0 / cells) * lon_scale,
            GEO_LAT_MIN + (ilat * 1.0 / cells) * lat_scale,
            GEO_LAT_MIN + ((ilat + 1) * 1.0 / cells) * lat_scale)


def decode_score(score: float) -> tuple[float, float]:
    """decodeGeohash: the (longitude, latitude) at the centre of the 52-bit cell a score names."""
    bits = _score_bits(score)
    lon_min, lon_max, lat_min, lat_max = _decode_area(bits, GEO_STEP_MAX)
    lon = min(max((lon_min + lon_max) / 2, GEO_LONG_MIN), GEO_LONG_MAX)
    lat = min(max((lat_min + lat_max) / 2, GEO_LAT_MIN), GEO_LAT_MAX)
    return lon, lat


def _score_bits(score: float) -> int:
    """(uint64_t)score as x86-64 computes it for the scores a geo set can hold."""
    if math.isnan(score) or math.isinf(score):
        return 0x8000000000000000 if score < 0 or math.isnan(score) else 0
    return int(score) & _M64


def _deg_rad(angle: float) -> float:
    return angle * D_R


def _rad_deg(angle: float) -> float:
    return angle / D_R


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_IN_METERS * math.fabs(_deg_rad(lat2) - _deg_rad(lat1))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance (haversine on Redis's earth radius)."""
    lon1r, lon2r = _deg_rad(lon1), _deg_rad(lon2)
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r, lat2r = _deg_rad(lat1), _deg_rad(lat2)
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * math.asin(math.sqrt(a))


_X_BITS = 0xAAAAAAAAAAAAAAAA    # in an interleaved geohash, longitude (x) has the odd bits
_Y_BITS = 0x5555555555555555    # and latitude (y) the even ones


def _move(bits: int, step: int, d: int, own: int, other: int) -> int:
    """geohash_move_x / geohash_move_y: one cell along the coordinate whose bits are `own` (d > 0: up, else
    down), the other coordinate's bits kept. Filling the other's bits with ones lets the carry (or borrow) run
    across them."""
    moved = bits & own
    kept = bits & other
    zz = other >> (64 - step * 2)
    if d > 0:
        moved = (moved + (zz + 1)) & _M64
    else:
        moved = ((moved | zz) - (zz + 1)) & _M64
    moved &= own >> (64 - step * 2)
    return moved | kept


def _neighbor(bits: int, step: int, dx: int, dy: int) -> int:
    if dx:
        bits = _move(bits, step, dx, _X_BITS, _Y_BITS)
    if dy:
        bits = _move(bits, step, dy, _Y_BITS, _X_BITS)
    return bits


# -- shapes -----------------------------------------------------------------------------------------------------------
class Shape:
    __slots__ = ("lon", "lat", "circle", "radius", "width", "height", "conversion")

    def __init__(self) -> None:
        self.lon = self.lat = 0.0
        self.circle = True
        self.radius = self.width = self.height = 0.0
        self.conversion = 1.0


def _estimate_steps(range_meters: float, lat: float) -> int:
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def _bounding_box(shape: Shape) -> tuple[float, float, float, float]:
    height = shape.conversion * (shape.radius if shape.circle else shape.height / 2)
    width = shape.conversion * (shape.radius if shape.circle else shape.width / 2)
    lat_delta = _rad_deg(height / EARTH_RADIUS_IN_METERS)
    long_delta_top = _rad_deg(width / EARTH_RADIUS_IN_METERS / math.cos(_deg_rad(shape.lat + lat_delta)))
    long_delta_bottom = _rad_deg(width / EARTH_RADIUS_IN_METERS / math.cos(_deg_rad(shape.lat - lat_delta)))
    southern = shape.lat < 0
    min_lon = shape.lon - long_delta_bottom if southern else shape.lon - long_delta_top
    max_lon = shape.lon + long_delta_bottom if southern else shape.lon + long_delta_top
    return min_lon, shape.lat - lat_delta, max_lon, shape.lat + lat_delta


# neighbour order of membersOfAllNeighbors: centre, N, S, E, W, NE, NW, SE, SW
_DIRECTIONS = ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))


def _search_cells(shape: Shape) -> list[tuple[int, int] | None]:
    """geohashCalculateAreasByShapeWGS84: the 9 (bits, step) cells to scan, None for dropped ones."""
    min_lon, min_lat, max_lon, max_lat = _bounding_box(shape)
    if shape.circle:
        radius_meters = shape.radius
    else:
        radius_meters = math.sqrt((shape.width / 2) * (shape.width / 2) + (shape.height / 2) * (shape.height / 2))
    radius_meters *= shape.conversion
    steps = _estimate_steps(radius_meters, shape.lat)
    bits = encode(shape.lon, shape.lat, steps) or 0
    cells = [_neighbor(bits, steps, dx, dy) for dx, dy in _DIRECTIONS]
    north = _decode_area(cells[1], steps)
    south = _decode_area(cells[2], steps)
    east = _decode_area(cells[3], steps)
    west = _decode_area(cells[4], steps)
    decrease = north[3] < max_lat or south[2] > min_lat or east[1] < max_lon or west[0] > min_lon
    if steps > 1 and decrease:
        steps -= 1
        bits = encode(shape.lon, shape.lat, steps) or 0
        cells = [_neighbor(bits, steps, dx, dy) for dx, dy in _DIRECTIONS]
    area = _decode_area(bits, steps)
    result: list[tuple[int, int] | None] = [(c, steps) for c in cells]
    if steps >= 2:
        if area[2] < min_lat:                        # south, south-west, south-east
            result[2] = result[8] = result[7] = None
        if area[3] > max_lat:                        # north, north-east, north-west
            result[1] = result[5] = result[6] = None
        if area[0] < min_lon:                        # west, south-west, north-west
            result[4] = result[8] = result[6] = None
        if area[1] > max_lon:                        # east, south-east, north-east
            result[3] = result[7] = result[5] = None
    return result


def _within(shape: Shape, score: float) -> tuple[float, float, float] | None:
    """geoAppendIfWithinShape: (distance in metres, lon, lat) if the point is inside the shape."""
    lon, lat = decode_score(score)
    if shape.circle:
        dist = distance(shape.lon, shape.lat, lon, lat)
        if dist > shape.radius * shape.conversion:
            return None
        return dist, lon, lat
    if lat_distance(lat, shape.lat) > shape.height * shape.conversion / 2:
        return None
    if distance(lon, lat, shape.lon, lat) > shape.width * shape.conversion / 2:
        return None
    return distance(shape.lon, shape.lat, lon, lat), lon, lat


def _search(value: ZSetValue, shape: Shape, limit: int) -> list[tuple[bytes, float, float, float, float]]:
    """membersOfAllNeighbors: [(member, score, distance m, lon, lat)] in scan order, stopping at limit (ANY)."""
    found: list[tuple[bytes, float, float, float, float]] = []
    cells = _search_cells(shape)
    last_processed = 0
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        if last_processed and cell == cells[last_processed]:
            continue
        if found and limit and len(found) >= limit:
            break
        bits, step = cell
        low = float(bits << (52 - step * 2))
        high = float((bits + 1) << (52 - step * 2))
        first, end = value.score_bounds(low, False, high, True)
        for member, score in value.slice(first, end):
            hit = _within(shape, score)
            if hit is not None:
                found.append((member, score, hit[0], hit[1], hit[2]))
                if limit and len(found) >= limit:
                    break
        last_processed = i
    return found


# -- argument parsing -------------------------------------------------------------------------------------------------
def _parse_unit(arg: bytes) -> float:
    unit = UNITS.get(arg.upper())
    if unit is None:
        raise CommandError(UNSUPPORTED_UNIT)
    return unit


def _parse_lonlat(lon_arg: bytes, lat_arg: bytes) -> tuple[float, float]:
    """extractLongLatOrReply."""
    lon = parse_float(lon_arg)
    lat = parse_float(lat_arg)
    if lon < GEO_LONG_MIN or lon > GEO_LONG_MAX or lat < GEO_LAT_MIN or lat > GEO_LAT_MAX:
        raise CommandError(_invalid_pair(lon, lat))
    return lon, lat


def _parse_distance(shape: Shape, radius_arg: bytes, unit_arg: bytes) -> None:
    radius = parse_float(radius_arg, NEED_NUMERIC_RADIUS)
    if radius < 0:
        raise CommandError(RADIUS_NEGATIVE)
    shape.radius = radius
    shape.conversion = _parse_unit(unit_arg)
    shape.circle = True


def _parse_box(shape: Shape, width_arg: bytes, height_arg: bytes, unit_arg: bytes) -> None:
    width = parse_float(width_arg, NEED_NUMERIC_WIDTH)
    height = parse_float(height_arg, NEED_NUMERIC_HEIGHT)
    if height < 0 or width < 0:
        raise CommandError(BOX_NEGATIVE)
    shape.width, shape.height = width, height
    shape.conversion = _parse_unit(unit_arg)
    shape.circle = False


def _member_position(value: ZSetValue, member: bytes) -> tuple[float, float]:
    score = value.score(member)
    if score is None:
        raise CommandError(COULD_NOT_DECODE_MEMBER)
    return decode_score(score)


def _coordinate(ctx: Context, value: float) -> Any:
    """addReplyHumanLongDouble: "%.17Lf" trimmed; RESP2 a bulk string, RESP3 a double of that text (which
    memdb's encoder writes as the same double, not the same characters)."""
    text = format_long_double(LongDouble(Fraction(value)))
    if ctx.resp > 2:
        return Double(float(text))
    return text


def _distance_reply(value: float) -> bytes:
    """addReplyDoubleDistance: "%.4f", a bulk string in both protocols."""
    return b"%.4f" % value


# -- commands ---------------------------------------------------------------------------------------------------------
def geoadd(ctx: Context, args: list[bytes]) -> Any:
    flags, index = leading_flags(args, 2, (b"NX", b"XX", b"CH"))
    if (len(args) - index) % 3 or {b"NX", b"XX"} <= flags:
        raise CommandError(messages.SYNTAX)
    zadd_args = [b"zadd", args[1], *args[2:index]]
    for i in range(index, len(args), 3):
        lon, lat = _parse_lonlat(args[i], args[i + 1])
        bits = encode(lon, lat)
        assert bits is not None
        zadd_args += [b"%d" % bits, args[i + 2]]
    return zsets.zadd(ctx, zadd_args)


def _lookup(ctx: Context, key: bytes) -> ZSetValue | None:
    return lookup(ctx, key, ZSetValue)


def geopos(ctx: Context, args: list[bytes]) -> Any:
    reply: list[Any] = []
    for score in zsets.member_scores(ctx, args[1], args[2:]):
        if score is None:
            reply.append(NULL_ARRAY)
        else:
            lon, lat = decode_score(score)
            reply.append([_coordinate(ctx, lon), _coordinate(ctx, lat)])
    return reply


def geodist(ctx: Context, args: list[bytes]) -> Any:
    to_meter = 1.0
    if len(args) == 5:
        to_meter = _parse_unit(args[4])
    elif len(args) > 5:
        raise CommandError(messages.SYNTAX)
    value = _lookup(ctx, args[1])
    if value is None:
        return None
    score1, score2 = value.score(args[2]), value.score(args[3])
    if score1 is None or score2 is None:
        return None
    lon1, lat1 = decode_score(score1)
    lon2, lat2 = decode_score(score2)
    return _distance_reply(distance(lon1, lat1, lon2, lat2) / to_meter)


def geohash(ctx: Context, args: list[bytes]) -> Any:
    return [None if score is None else _geohash_text(score) for score in zsets.member_scores(ctx, args[1], args[2:])]


def _geohash_text(score: float) -> bytes:
    """GEOHASH's 11-character string for a stored score."""
    lon, lat = decode_score(score)
    # re-encoded on the standard latitude range -90..90 so that the string is a standard geohash
    bits = encode(lon, lat, 26, -90.0, 90.0, -180.0, 180.0) or 0
    chars = bytearray()
    for i in range(11):
        idx = 0 if i == 10 else (bits >> (52 - (i + 1) * 5)) & 0x1F
        chars.append(_GEOALPHABET[idx])
    return bytes(chars)


_COORDS, _MEMBER, _NOSTORE, _SEARCH, _SEARCHSTORE = 1, 2, 4, 8, 16


def _georadius_generic(ctx: Context, args: list[bytes], src_index: int, flags: int) -> Any:
    """georadiusGeneric: option parsing (errors in Redis's order), the search, then the reply or the store."""
    value = _lookup(ctx, args[src_index])
    shape = Shape()
    store_key: bytes | None = None
    storedist = False
    if flags & _COORDS:
        base = 6
        shape.lon, shape.lat = _parse_lonlat(args[2], args[3])
        _parse_distance(shape, args[4], args[5])
    elif flags & _MEMBER and value is None:
        base = 5
    elif flags & _MEMBER:
        base = 5
        shape.lon, shape.lat = _member_position(value, args[2])
        _parse_distance(shape, args[3], args[4])
    else:
        base = 2
        if flags & _SEARCHSTORE:
            base = 3
            store_key = args[1]

    withdist = withhash = withcoord = any_ = False
    frommember = fromloc = byradius = bybox = False
    sort: str | None = None
    count = 0
    remaining = len(args) - base
    i = 0
    while i < remaining:
        j = base + i
        arg = args[j].upper()
        if arg == b"WITHDIST":
            withdist = True
        elif arg == b"WITHHASH":
            withhash = True
        elif arg == b"WITHCOORD":
            withcoord = True
        elif arg == b"ANY":
            any_ = True
        elif arg == b"ASC":
            sort = "asc"
        elif arg == b"DESC":
            sort = "desc"
        elif arg == b"COUNT" and i + 1 < remaining:
            count = parse_int(args[j + 1])
            if count <= 0:
                raise CommandError(COUNT_MUST_BE_POSITIVE)
            i += 1
        elif arg in (b"STORE", b"STOREDIST") and i + 1 < remaining and not flags & (_NOSTORE | _SEARCH):
            store_key = args[j + 1]
            storedist = arg == b"STOREDIST"
            i += 1
        elif arg == b"STOREDIST" and flags & _SEARCH and flags & _SEARCHSTORE:
            storedist = True
        elif arg == b"FROMMEMBER" and i + 1 < remaining and flags & _SEARCH and not fromloc:
            if value is not None:
                shape.lon, shape.lat = _member_position(value, args[j + 1])
            frommember = True
            i += 1
        elif arg == b"FROMLONLAT" and i + 2 < remaining and flags & _SEARCH and not frommember:
            shape.lon, shape.lat = _parse_lonlat(args[j + 1], args[j + 2])
            fromloc = True
            i += 2
        elif arg == b"BYRADIUS" and i + 2 < remaining and flags & _SEARCH and not bybox:
            _parse_distance(shape, args[j + 1], args[j + 2])
            byradius = True
            i += 2
        elif arg == b"BYBOX" and i + 3 < remaining and flags & _SEARCH and not byradius:
            _parse_box(shape, args[j + 1], args[j + 2], args[j + 3])
            bybox = True
            i += 3
        else:
            raise CommandError(messages.SYNTAX)
        i += 1

    name = args[0].decode("utf-8", "surrogateescape")
    if store_key is not None and (withdist or withhash or withcoord):
        which = "GEOSEARCHSTORE" if flags & _SEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(f"ERR {which} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    if flags & _SEARCH and not (frommember or fromloc):
        raise CommandError(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if flags & _SEARCH and not (byradius or bybox):
        raise CommandError(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise CommandError(ANY_REQUIRES_COUNT)

    if value is None:
        if store_key is not None:
            if ctx.db.delete(store_key):
                ctx.notify(notify.GENERIC, "del", store_key)
            return 0
        return []
    if count and sort is None and not any_:
        sort = "asc"

    found = _search(value, shape, count if any_ else 0)
    if not found and store_key is None:
        return []
    returned = len(found) if count == 0 or len(found) < count else count
    if sort == "asc":
        found.sort(key=lambda hit: hit[2])
    elif sort == "desc":
        found.sort(key=lambda hit: hit[2], reverse=True)
    found = found[:returned]

    if store_key is None:
        reply: list[Any] = []
        for member, score, dist, lon, lat in found:
            dist /= shape.conversion
            if not (withdist or withhash or withcoord):
                reply.append(member)
                continue
            item: list[Any] = [member]
            if withdist:
                item.append(_distance_reply(dist))
            if withhash:
                item.append(int(score))
            if withcoord:
                item.append([_coordinate(ctx, lon), _coordinate(ctx, lat)])
            reply.append(item)
        return reply

    result = ZSetValue(size_hint=1 << 30)   # createZsetObject: a skiplist, converted below if it fits
    max_len = 0
    for member, score, dist, _lon, _lat in found:
        result.set(member, dist / shape.conversion if storedist else score)
        max_len = max(max_len, len(member))
    result.convert_if_needed(max_len)
    event = "geosearchstore" if flags & _SEARCH else "georadiusstore"
    return store_or_delete(ctx, store_key, result, notify.ZSET, event)   # nothing found: deletes store_key


def georadius(ctx: Context, args: list[bytes]) -> Any:
    return _georadius_generic(ctx, args, 1, _COORDS)


def georadius_ro(ctx: Context, args: list[bytes]) -> Any:
    return _georadius_generic(ctx, args, 1, _COORDS | _NOSTORE)


def georadiusbymember(ctx: Context, args: list[bytes]) -> Any:
    return _georadius_generic(ctx, args, 1, _MEMBER)


def georadiusbymember_ro(ctx: Context, args: list[bytes]) -> Any:
    return _georadius_generic(ctx, args, 1, _MEMBER | _NOSTORE)


def geosearch(ctx: Context, args: list[bytes]) -> Any:
    return _georadius_generic(ctx, args, 1, _SEARCH)


def geosearchstore(ctx: Context, args: list[bytes]) -> Any:
    return _georadius_generic(ctx, args, 2, _SEARCH | _SEARCHSTORE)


def _georadius_keys(first_option: int):
    """georadiusGetKeys: the source key plus the key after the last STORE/STOREDIST."""
    def find(args: list[bytes]) -> list[int]:
        keys = [1]
        store = None
        for i in range(first_option, len(args) - 1):
            if args[i].upper() in (b"STORE", b"STOREDIST"):
                store = i + 1
        if store is not None:
            keys.append(store)
        return keys
    return find


COMMANDS = [
    command("geoadd", -5, "write denyoom", 1, 1, 1, geoadd, "@write @geo @slow"),
    command("geodist", -4, "readonly", 1, 1, 1, geodist, "@read @geo @slow"),
    command("geohash", -2, "readonly", 1, 1, 1, geohash, "@read @geo @slow"),
    command("geopos", -2, "readonly", 1, 1, 1, geopos, "@read @geo @slow"),
    command("geosearch", -7, "readonly", 1, 1, 1, geosearch, "@read @geo @slow"),
    command("geosearchstore", -8, "write denyoom", 1, 2, 1, geosearchstore, "@write @geo @slow"),
    command("georadius", -6, "write denyoom movablekeys", 1, 1, 1, georadius, "@write @geo @slow",
            key_finder=_georadius_keys(6)),
    command("georadius_ro", -6, "readonly", 1, 1, 1, georadius_ro, "@read @geo @slow"),
    command("georadiusbymember", -5, "write denyoom movablekeys", 1, 1, 1, georadiusbymember, "@write @geo @slow",
            key_finder=_georadius_keys(5)),
    command("georadiusbymember_ro", -5, "readonly", 1, 1, 1, georadiusbymember_ro, "@read @geo @slow"),
]
