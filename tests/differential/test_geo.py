"""Geo commands vs redis-server: exact GEOPOS/GEOHASH/GEODIST text, search results in Redis's order (unsorted
replies follow the geohash cell scan, so they must match exactly), STORE/STOREDIST, error texts; then a hypothesis
state machine over a few members placed around a few centres."""
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tests.differential.harness import Differential, MemdbInstance, oracle_server

SICILY = ("GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania",
          "12.758489", "38.788135", "edge1", "17.241510", "38.222446", "edge2")

CASES = {
    "basics": [
        SICILY, ("GEOPOS", "Sicily", "Palermo", "Catania", "nope"), ("GEOPOS", "nokey", "a", "b"), ("GEOPOS", "Sicily"),
        ("GEODIST", "Sicily", "Palermo", "Catania"), ("GEODIST", "Sicily", "Palermo", "Catania", "KM"),
        ("GEODIST", "Sicily", "Palermo", "Catania", "mi"), ("GEODIST", "Sicily", "Palermo", "Catania", "ft"),
        ("GEODIST", "Sicily", "Palermo", "Palermo"), ("GEODIST", "Sicily", "Palermo", "nope"),
        ("GEODIST", "nokey", "a", "b"), ("GEODIST", "Sicily", "Palermo", "Catania", "yd"),
        ("GEODIST", "Sicily", "Palermo", "Catania", "km", "x"), ("GEOHASH", "Sicily", "Palermo", "Catania", "nope"),
        ("GEOHASH", "nokey", "a"), ("GEOHASH", "Sicily"), ("ZRANGE", "Sicily", "0", "-1", "WITHSCORES"),
        ("OBJECT", "ENCODING", "Sicily"),
    ],
    "geoadd": [
        ("GEOADD", "g", "0", "0", "a"), ("GEOADD", "g", "NX", "1", "1", "a", "2", "2", "b"), ("GEOPOS", "g", "a", "b"),
        ("GEOADD", "g", "XX", "CH", "3", "3", "a", "4", "4", "c"), ("GEOPOS", "g", "a", "c"),
        ("GEOADD", "g", "CH", "3", "3", "a", "5", "5", "b"), ("GEOADD", "g", "NX", "XX", "1", "1", "a"),
        ("GEOADD", "g", "1", "1"), ("GEOADD", "g", "1", "1", "a", "2"), ("GEOADD", "g", "x", "1", "a"),
        ("GEOADD", "g", "1", "x", "a"), ("GEOADD", "g", "181", "0", "a"), ("GEOADD", "g", "0", "85.06", "a"),
        ("GEOADD", "g", "-180", "-85.05112878", "min", "180", "85.05112878", "max"), ("GEOPOS", "g", "min", "max"),
        ("GEOHASH", "g", "min", "max", "a"), ("GEOADD", "g", "CH", "CH", "CH"), ("GEOADD", "g", "NX", "CH", "a"),
        ("SET", "s", "v"), ("GEOADD", "s", "1", "1", "a"), ("GEOPOS", "s", "a"), ("GEOHASH", "s", "a"),
        ("GEODIST", "s", "a", "b"), ("GEOSEARCH", "s", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
        ("GEOADD", "g", "0", "0", "m" * 70), ("OBJECT", "ENCODING", "g"), ("ZADD", "g", "-5", "neg", "1e300", "huge"),
        ("GEOPOS", "g", "neg"), ("GEOHASH", "g", "huge"),
    ],
    "search": [
        SICILY,
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "DESC", "WITHDIST"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "400", "km", "WITHCOORD", "WITHHASH"),
        ("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "ASC", "WITHDIST"),
        ("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "100", "300", "mi", "COUNT", "2"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "400", "km", "COUNT", "1", "ANY"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "400", "km", "COUNT", "3", "DESC"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "0", "m"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "20000", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "-150", "-80", "BYBOX", "40000", "40000", "km"),
        ("GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "Sicily", "FROMMEMBER", "x", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "Sicily", "BYRADIUS", "1", "km", "ASC"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "ASC", "DESC"),
        ("geosearch", "Sicily", "FROMLONLAT", "1", "1", "FROMMEMBER", "x"),
        ("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "x", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "-1", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "yd"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "x", "1", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "1", "x", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYBOX", "-1", "1", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "COUNT", "0"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "COUNT", "x"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "ANY"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "STORE", "x"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "STOREDIST"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "200", "1", "BYRADIUS", "1", "km"),
        ("GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1", "BYRADIUS", "1", "km", "COUNT"),
    ],
    "store": [
        SICILY, ("SET", "dst", "x", "EX", "100"),
        ("GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"), ("TTL", "dst"),
        ("ZRANGE", "dst", "0", "-1", "WITHSCORES"), ("OBJECT", "ENCODING", "dst"),
        ("GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STOREDIST",
         "COUNT", "1"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST"),
        ("GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "STORE", "x"),
        ("GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"), ("EXISTS", "dst"),
        ("GEOSEARCHSTORE", "dst", "nokey", "FROMMEMBER", "a", "BYRADIUS", "1", "km"),
        ("GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("GEORADIUS", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst", "DESC"),
        ("ZRANGE", "dst", "0", "-1", "WITHSCORES"), ("GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst",
                                                    "WITHCOORD"),
        ("GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "dst"),
        ("GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "WITHCOORD", "WITHHASH", "ASC"),
        ("GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "WITHDIST", "COUNT", "1"),
        ("GEORADIUSBYMEMBER", "Sicily", "Palermo", "300", "km", "WITHDIST", "ASC"),
        ("GEORADIUSBYMEMBER", "Sicily", "nope", "300", "km"), ("GEORADIUSBYMEMBER", "nokey", "nope", "x", "km"),
        ("GEORADIUSBYMEMBER", "nokey", "nope", "1", "km", "STORE", "dst"), ("EXISTS", "dst"),
        ("GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", "300", "km", "DESC"),
        ("GEORADIUSBYMEMBER", "Sicily", "Palermo", "300", "km", "FROMLONLAT", "1", "1"),
        ("GEORADIUS", "Sicily", "15", "37", "x", "km"), ("GEORADIUS", "Sicily", "15", "37", "1", "yd"),
        ("GEORADIUS", "nokey", "15", "37", "1", "km"), ("GEORADIUS", "nokey", "15", "37", "1", "km", "STORE", "dst"),
        ("GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"), ("GEORADIUS", "Sicily", "15", "37", "200", "km",
                                                                  "COUNT", "1", "ANY", "WITHDIST"),
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        diff.check(*command)


def test_examples_resp3(diff3):
    for command in CASES["basics"] + CASES["search"]:
        diff3.check(*command)


def test_many_points_scan_order(diff):
    """Hundreds of points on a grid: unsorted replies follow the cell scan order exactly; ANY stops early."""
    args = []
    for i in range(30):
        for j in range(20):
            args += [f"{-10 + i * 0.7:.4f}", f"{40 + j * 0.45:.4f}", f"p{i}-{j}"]
    diff.check("GEOADD", "grid", *args)
    for radius, unit in (("50", "km"), ("300", "km"), ("2000", "km"), ("100", "mi")):
        diff.check("GEOSEARCH", "grid", "FROMLONLAT", "0", "45", "BYRADIUS", radius, unit)
        diff.check("GEOSEARCH", "grid", "FROMMEMBER", "p3-4", "BYRADIUS", radius, unit, "COUNT", "7", "ANY")
        diff.check("GEOSEARCH", "grid", "FROMLONLAT", "5.5", "47.3", "BYBOX", radius, "100", unit, "WITHHASH")
        diff.check("GEOSEARCH", "grid", "FROMLONLAT", "5.5", "47.3", "BYBOX", radius, "100", unit, "COUNT", "5",
                   "ANY", "DESC", "WITHDIST")
        diff.check("GEORADIUS", "grid", "0", "45", radius, unit, "WITHDIST", "ASC")
    diff.check("GEOSEARCHSTORE", "out", "grid", "FROMLONLAT", "0", "45", "BYRADIUS", "300", "km", "STOREDIST")
    diff.check("ZRANGE", "out", "0", "-1", "WITHSCORES")
    diff.check("OBJECT", "ENCODING", "out")


MEMBERS = ["a", "b", "c", "d", "e"]
PLACES = [("13.361389", "38.115556"), ("15.087269", "37.502669"), ("13.5", "37.9"), ("-0.1276", "51.5072"),
          ("2.3522", "48.8566"), ("-179.9", "-80.1"), ("179.95", "84.9"), ("0", "0")]
CENTRES = [("14", "38"), ("0.5", "50"), ("-179.99", "-82"), ("179.99", "84"), ("0.01", "-0.01")]
KEYS = st.sampled_from(["g1", "g2", "s"])
UNITS = st.sampled_from(["m", "km", "mi", "ft"])
SIZES = st.sampled_from(["0", "10", "150", "900", "5000"])


class GeoMachine(RuleBasedStateMachine):
    RESP = 2

    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(resp=self.RESP), MemdbInstance(seed=2, resp=self.RESP))
        self.diff.flush()
        self.diff.check("SET", "s", "x")

    def teardown(self):
        self.diff.redis.close()

    @rule(key=KEYS, adds=st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(MEMBERS)), min_size=1,
                                  max_size=4),
          opts=st.sampled_from([(), ("NX",), ("XX",), ("CH",), ("XX", "CH")]))
    def geoadd(self, key, adds, opts):
        self.diff.check("GEOADD", key, *opts, *[part for (lon, lat), m in adds for part in (lon, lat, m)])

    @rule(key=KEYS, members=st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3),
          cmd=st.sampled_from(["GEOPOS", "GEOHASH"]))
    def positions(self, key, members, cmd):
        self.diff.check(cmd, key, *members)

    @rule(key=KEYS, a=st.sampled_from(MEMBERS), b=st.sampled_from(MEMBERS), unit=st.none() | UNITS)
    def geodist(self, key, a, b, unit):
        self.diff.check("GEODIST", key, a, b, *([unit] if unit else []))

    @rule(key=KEYS, dest=KEYS, store=st.sampled_from([None, "STORE", "STOREDIST"]),
          origin=st.one_of(st.sampled_from(CENTRES).map(lambda c: ("FROMLONLAT",) + c),
                           st.sampled_from(MEMBERS).map(lambda m: ("FROMMEMBER", m))),
          shape=st.one_of(st.tuples(st.just("BYRADIUS"), SIZES, UNITS),
                          st.tuples(st.just("BYBOX"), SIZES, SIZES, UNITS)),
          order=st.sampled_from([(), ("ASC",), ("DESC",)]),
          count=st.sampled_from([(), ("COUNT", "1"), ("COUNT", "2", "ANY"), ("COUNT", "3")]),
          withs=st.lists(st.sampled_from(["WITHDIST", "WITHCOORD", "WITHHASH"]), max_size=2))
    def geosearch(self, key, dest, store, origin, shape, order, count, withs):
        if store is None:
            self.diff.check("GEOSEARCH", key, *origin, *shape, *order, *count, *withs)
        else:
            extra = ("STOREDIST",) if store == "STOREDIST" else ()
            self.diff.check("GEOSEARCHSTORE", dest, key, *origin, *shape, *order, *count, *extra)
            self.diff.check("ZRANGE", dest, "0", "-1", "WITHSCORES")

    @rule(key=KEYS, centre=st.sampled_from(CENTRES), member=st.sampled_from(MEMBERS), radius=SIZES, unit=UNITS,
          by_member=st.booleans(), opts=st.lists(st.sampled_from(["WITHDIST", "ASC", "DESC", "WITHHASH"]),
                                                 max_size=2))
    def georadius(self, key, centre, member, radius, unit, by_member, opts):
        if by_member:
            self.diff.check("GEORADIUSBYMEMBER", key, member, radius, unit, *opts)
        else:
            self.diff.check("GEORADIUS_RO", key, *centre, radius, unit, *opts)

    @rule(key=KEYS, member=st.sampled_from(MEMBERS))
    def zrem(self, key, member):
        self.diff.check("ZREM", key, member)


class GeoMachineResp3(GeoMachine):
    RESP = 3


@pytest.mark.parametrize("machine", [GeoMachine, GeoMachineResp3], ids=["resp2", "resp3"])
def test_geo_machine(redis_server, machine):
    run_state_machine_as_test(machine)
