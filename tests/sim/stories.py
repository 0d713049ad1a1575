"""Scenario ("story") files in the style of etcd-raft's interaction tests (`testdata/*.txt`, datadriven).

A file is a sequence of blocks, each: optional `#` comment lines, one command line, `----`, the expected output,
a blank line. `run_story(path)` replays the commands on a `Simulator` (delay 0: nothing moves unless a command moves
it) and compares outputs; MEMDB_SIM_REWRITE=1 rewrites the expected outputs instead (then read the diff!).

Commands (nodes are n1..nN):
  cluster n=3 [election=10 heartbeat=2 prevote=true checkquorum=true maxmsg=1024 seed=0]
  campaign NODE                      NODE starts an election now (a pre-vote first if enabled)
  tick NODE... [count=1]             logical time for those nodes only
  tick-until-campaign NODE...        tick them together until one starts an election
  propose NODE DATA                  a client proposal to NODE
  deliver-msgs [from=N] [to=N] [type=T] [drop=true]
                                     deliver (or drop) the matching messages in flight, oldest first; messages
                                     they cause stay queued
  stabilize                          deliver everything, including what that causes, until the network is empty
  partition N... | N...  /  heal     blocked links between the groups
  crash NODE  /  restart NODE        lose memory and queued messages / rebuild from the disk
  status                             per node: role, term, vote, commit, durable log as index/term
Each command prints the messages it delivers (`>`) or drops (`x`), the messages queued by campaign/tick/propose
(`+`), and role, term and commit changes (`~`).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from txlog.raft.core import Config, Message, MessageType, Role

from .simulator import CALM, Simulator

REWRITE = os.environ.get("MEMDB_SIM_REWRITE") == "1"


def fmt_msg(m: Message) -> str:
    t = m.type
    head = f"{m.frm}->{m.to} {t.name} term={m.term}"
    if t in (MessageType.VOTE, MessageType.PRE_VOTE):
        return f"{head} last={m.index}/{m.log_term}"
    if t is MessageType.APPEND:
        ents = " ".join(f"{e.index}/{e.term}" + (f":{e.data.decode()}" if e.data else "") for e in m.entries)
        return f"{head} prev={m.index}/{m.log_term} commit={m.commit} entries=[{ents}]"
    if t is MessageType.APPEND_RESP:
        return f"{head} index={m.index}" + (f" reject hint={m.reject_hint}" if m.reject else "")
    if t is MessageType.HEARTBEAT:
        return f"{head} commit={m.commit}"
    return head + (" reject" if m.reject else "")


class Story:
    def __init__(self) -> None:
        self.sim: Simulator | None = None
        self.out: list[str] = []
        self._seen: dict[str, tuple] = {}
        self._queued = 0

    # -- output helpers
    def _state(self, nid: str) -> tuple:
        n = self.sim.nodes[nid]
        return None if n is None else (n.role, n.term, n.commit)

    def _note_changes(self) -> None:
        for nid in self.sim.ids:
            now, before = self._state(nid), self._seen.get(nid)
            if now is None or now == before:
                self._seen[nid] = now
                continue
            role, term, commit = now
            if before is None or before[:2] != (role, term):
                self.out.append(f"~ {nid} is {role.name} in term {term}")
            if before is None or before[2] != commit:
                self.out.append(f"~ {nid} commit={commit}")
            self._seen[nid] = now

    def _note_queued(self) -> None:
        for f in self.sim.network[self._queued:]:
            self.out.append(f"+ {fmt_msg(f.msg)}")
        self._queued = len(self.sim.network)

    def _deliver(self, i: int, drop: bool = False) -> None:
        m = self.sim.network[i].msg
        lost = drop or self.sim.nodes[m.to] is None or (m.frm, m.to) in self.sim.blocked
        self.out.append(("x " if lost else "> ") + fmt_msg(m))
        if drop:
            self.sim.drop(i)
        else:
            self.sim.deliver(i, drop=False, duplicate=False)
        self._queued = len(self.sim.network)
        self._note_changes()

    # -- commands
    def run(self, line: str) -> list[str]:
        self.out = []
        cmd, *args = line.split()
        kw = dict(a.split("=", 1) for a in args if "=" in a)
        pos = [a for a in args if "=" not in a]
        getattr(self, "cmd_" + cmd.replace("-", "_"))(pos, kw)
        if self.sim is not None and cmd not in ("deliver-msgs", "stabilize"):
            self._note_queued()
            self._note_changes()
        return self.out or ["ok"]

    def cmd_cluster(self, pos: list[str], kw: dict[str, str]) -> None:
        flag = lambda k, d: kw.get(k, d) == "true"   # noqa: E731
        config = Config(election_ticks=int(kw.get("election", 10)), heartbeat_ticks=int(kw.get("heartbeat", 2)),
                        pre_vote=flag("prevote", "true"), check_quorum=flag("checkquorum", "true"),
                        max_entries_per_message=int(kw.get("maxmsg", 1024)))
        self.sim = Simulator(int(kw.get("seed", 0)), int(kw.get("n", 3)), config, dataclasses.replace(CALM,
                             delay_ticks_max=0, propose_prob=0.0))
        self._seen = {nid: self._state(nid) for nid in self.sim.ids}

    def cmd_campaign(self, pos: list[str], kw: dict[str, str]) -> None:
        self.sim.campaign(pos[0])

    def cmd_tick(self, pos: list[str], kw: dict[str, str]) -> None:
        for _ in range(int(kw.get("count", 1))):
            self.sim.tick(pos)

    def cmd_tick_until_campaign(self, pos: list[str], kw: dict[str, str]) -> None:
        """Tick the nodes together, one tick at a time, until one of them starts an election."""
        for t in range(1, 10 * self.sim.config.election_ticks):
            before = {nid: self._state(nid) for nid in pos}
            self.sim.tick(pos)
            for nid in pos:
                now = self._state(nid)
                if now is not None and now != before[nid] and now[0] in (Role.PRE_CANDIDATE, Role.CANDIDATE):
                    self.out.append(f"after {t} ticks:")
                    return
        raise AssertionError("nobody campaigns")

    def cmd_propose(self, pos: list[str], kw: dict[str, str]) -> None:
        nid, data = pos
        node = self.sim.node(nid)
        if node.role is not Role.LEADER:
            self.out.append(f"{nid} refuses: not the leader (leader: {node.leader_id or 'unknown'})")
            return
        self.sim.propose(nid, data.encode())
        self.out.append(f"{nid} appends {node.log.last_index}/{node.term}:{data}")

    def cmd_deliver_msgs(self, pos: list[str], kw: dict[str, str]) -> None:
        want = [f.seq for f in self.sim.network if
                kw.get("from", f.msg.frm) == f.msg.frm and kw.get("to", f.msg.to) == f.msg.to
                and kw.get("type", f.msg.type.name) == f.msg.type.name]
        for seq in want:
            idx = next(i for i, f in enumerate(self.sim.network) if f.seq == seq)
            self._deliver(idx, drop=kw.get("drop") == "true")

    def cmd_stabilize(self, pos: list[str], kw: dict[str, str]) -> None:
        for _ in range(10_000):
            if not self.sim.network:
                return
            self._deliver(0)
        raise AssertionError("stabilize: the network does not settle")

    def cmd_partition(self, pos: list[str], kw: dict[str, str]) -> None:
        groups, cur = [], []
        for a in pos:
            if a == "|":
                groups.append(cur)
                cur = []
            else:
                cur.append(a)
        self.sim.partition(*groups, cur)

    def cmd_heal(self, pos: list[str], kw: dict[str, str]) -> None:
        self.sim.heal()

    def cmd_crash(self, pos: list[str], kw: dict[str, str]) -> None:
        self.sim.crash(pos[0])
        self._queued = len(self.sim.network)
        self.out.append(f"~ {pos[0]} is down")

    def cmd_restart(self, pos: list[str], kw: dict[str, str]) -> None:
        self.sim.restart(pos[0])

    def cmd_status(self, pos: list[str], kw: dict[str, str]) -> None:
        for nid in self.sim.ids:
            n, disk = self.sim.nodes[nid], self.sim.disks[nid]
            log = " ".join(f"{e.index}/{e.term}" + (f":{e.data.decode()}" if e.data else "") for e in disk.entries)
            if n is None:
                self.out.append(f"{nid} DOWN  disk: term={disk.hard_state.term} log=[{log}]")
            else:
                self.out.append(f"{nid} {n.role.name} term={n.term} vote={n.vote or '-'} commit={n.commit} "
                                f"log=[{log}]")


def parse(text: str) -> list[tuple[list[str], str, list[str]]]:
    """-> [(comment lines, command, expected output lines)]"""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        comments = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
            if lines[i].startswith("#"):
                comments.append(lines[i])
            i += 1
        if i >= len(lines):
            break
        cmd = lines[i]
        assert lines[i + 1] == "----", f"line {i + 2}: expected ---- after the command {cmd!r}"
        i += 2
        out = []
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        blocks.append((comments, cmd, out))
    return blocks


def run_story(path: Path) -> None:
    story = Story()
    blocks = parse(path.read_text())
    rendered, mismatches = [], []
    for comments, cmd, expected in blocks:
        actual = story.run(cmd)
        if actual != expected:
            mismatches.append(f"{path.name}: `{cmd}`\n--- expected\n" + "\n".join(expected)
                              + "\n--- actual\n" + "\n".join(actual))
        rendered.append("\n".join(comments + [cmd, "----"] + actual))
    if REWRITE:
        path.write_text("\n\n".join(rendered) + "\n")
        return
    assert not mismatches, "\n\n".join(mismatches) + "\n(MEMDB_SIM_REWRITE=1 regenerates; review the diff)"
