"""A linearizability checker for client histories (Wing & Gong's search with Lowe's memoization, as in Porcupine).

Theory of operation
-------------------
A history is a list of `Op`s, each with a call time, a return time and a result. It is linearizable if every
operation can be given one instant between its call and its return such that, applied in that order to the
sequential model, each operation returns what the client saw. Linearizability is local (Herlihy & Wing, §3.3), so
the history is split per key and each part is checked on its own: a register model (SET/GET) or a counter model
(INCR returns the new value, GET).

The search (Porcupine's `checkSingle`): the call and return events of one key, sorted by time (a call before a
return at the same instant, which is the lenient choice), form a linked list. Walking from the head, a call may be
linearized next if the model accepts it in the current state; it is then lifted out of the list (call and return)
and the walk restarts from the head. Reaching a return event means that operation should have been linearized
already: backtrack (undo the last choice and try the next call after it). The list empty means success; a
backtrack with nothing to undo means no order exists. A cache of (set of linearized ops as a bitmask, model
state) prunes configurations already explored, which makes the usual history nearly linear to check.

Operations whose outcome is unknown (an error or timeout after the request may have reached the server) are
*uncertain*: they have no result and an open-ended return time, so they may take effect at any instant after
their call, or never (taking effect after everything else is indistinguishable from never). Three reductions keep
this cheap without changing the answer:
  - an uncertain GET has no effect and is dropped; an uncertain SET whose value nobody read is dropped (any order
    with it is an order without it, plus it at the end);
  - an uncertain SET whose value was read must precede the earliest-returning read of that value, so its return
    time becomes that read's return time (only when no other op writes the same value);
  - uncertain ops with the same input (e.g. INCRs of unknown outcome) are interchangeable: only the orders that
    take them in call order are searched.
Once only uncertain ops are left, the history is linearizable (they all go at the end).

The search is bounded: past `max_steps` a key's result is TOO_LARGE, never a hang.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from collections import defaultdict
from typing import Callable, Hashable, Iterable

UNKNOWN = object()        # the result of an uncertain op (printed as "?")


@dataclasses.dataclass(frozen=True, slots=True)
class Op:
    key: str
    kind: str                 # "set" | "get" | "incr"
    value: object = None      # SET's argument
    output: object = None     # GET: the value read (None = missing); INCR: the new value; UNKNOWN if uncertain
    call: float = 0.0         # time.monotonic() before the request was sent
    ret: float = math.inf     # time.monotonic() after the reply arrived; inf if uncertain
    client: int = 0           # who issued it (for reports only)

    @property
    def uncertain(self) -> bool:
        return self.output is UNKNOWN

    def __str__(self) -> str:
        out = "?" if self.uncertain else repr(self.output)
        arg = f" {self.value!r}" if self.kind == "set" else ""
        ret = "inf" if self.ret == math.inf else f"{self.ret:.4f}"
        return f"c{self.client} {self.kind.upper()} {self.key}{arg} -> {out} [{self.call:.4f}, {ret}]"


def uncertain(key: str, kind: str, value: object = None, call: float = 0.0, client: int = 0) -> Op:
    return Op(key, kind, value, UNKNOWN, call, math.inf, client)


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    init: Callable[[], Hashable]
    # (state, op) -> new state, or None if the op cannot return its output in that state. Uncertain ops
    # (output UNKNOWN) must be accepted in every state.
    step: Callable[[Hashable, Op], Hashable | None]
    prepare: Callable[[list[Op]], list[Op]] = lambda ops: ops


_REJECT = None


def _register_step(state, op: Op):
    if op.kind == "set":
        return ("v", op.value)
    if op.kind == "get":
        return state if op.output == state[1] else _REJECT
    raise ValueError(f"register model: unexpected op {op}")


def _register_prepare(ops: list[Op]) -> list[Op]:
    writers = defaultdict(int)
    for op in ops:
        if op.kind == "set":
            writers[op.value] += 1
    first_read_ret: dict[object, float] = {}
    for op in ops:
        if op.kind == "get" and not op.uncertain and op.output is not None:
            first_read_ret[op.output] = min(first_read_ret.get(op.output, math.inf), op.ret)
    out = []
    for op in ops:
        if op.uncertain and op.kind == "get":
            continue
        if op.uncertain and op.kind == "set":
            ret = first_read_ret.get(op.value)
            if ret is None:
                continue                      # never observed: equivalent to never applied
            if writers[op.value] == 1:
                # It took effect before the first read that saw it returned; it stays uncertain in output only.
                op = dataclasses.replace(op, ret=max(ret, op.call))
        out.append(op)
    return out


def _counter_step(state, op: Op):
    if op.kind == "incr":
        return state + 1 if op.uncertain or op.output == state + 1 else _REJECT
    if op.kind == "get":
        return state if (op.output or 0) == state else _REJECT
    raise ValueError(f"counter model: unexpected op {op}")


def _counter_prepare(ops: list[Op]) -> list[Op]:
    return [op for op in ops if not (op.uncertain and op.kind == "get")]


REGISTER = Model("register", lambda: ("v", None), _register_step, _register_prepare)
COUNTER = Model("counter", lambda: 0, _counter_step, _counter_prepare)


class Outcome(enum.Enum):
    OK = "ok"
    VIOLATION = "violation"
    TOO_LARGE = "too large"       # the search budget ran out: neither proved nor refuted


@dataclasses.dataclass
class KeyResult:
    key: str
    model: str
    outcome: Outcome
    ops: int
    steps: int
    detail: str = ""


@dataclasses.dataclass
class Result:
    keys: list[KeyResult]

    @property
    def ok(self) -> bool:
        return all(k.outcome is Outcome.OK for k in self.keys)

    @property
    def violations(self) -> list[KeyResult]:
        return [k for k in self.keys if k.outcome is Outcome.VIOLATION]

    @property
    def too_large(self) -> list[KeyResult]:
        return [k for k in self.keys if k.outcome is Outcome.TOO_LARGE]

    def summary(self) -> str:
        ops = sum(k.ops for k in self.keys)
        head = (f"{len(self.keys)} keys, {ops} ops: {len(self.violations)} violations, "
                f"{len(self.too_large)} too large")
        bad = [k for k in self.keys if k.outcome is not Outcome.OK]
        return "\n".join([head] + [f"--- {k.key} ({k.model}, {k.ops} ops): {k.outcome.value}\n{k.detail}"
                                   for k in bad[:5]])


def check(ops: Iterable[Op], model: Model, max_steps: int = 2_000_000) -> Result:
    """Check each key's operations against `model` (all ops of a key must be of that model)."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    return Result([check_key(key, key_ops, model, max_steps) for key, key_ops in sorted(by_key.items())])


def check_key(key: str, ops: list[Op], model: Model, max_steps: int = 2_000_000) -> KeyResult:
    for op in ops:
        assert op.call <= op.ret, f"returned before it was called: {op}"
    ops = sorted(model.prepare(list(ops)), key=lambda o: o.call)
    n = len(ops)
    if n == 0:
        return KeyResult(key, model.name, Outcome.OK, 0, 0)

    # Nodes: 0 is the head sentinel, 1..2n the call/return events in time order (calls first on ties).
    events = sorted([(op.call, 0, i) for i, op in enumerate(ops)] + [(op.ret, 1, i) for i, op in enumerate(ops)])
    size = 2 * n + 1
    nxt = list(range(1, size)) + [0]        # 0 terminates the list
    prv = [0] + list(range(0, size - 1))
    node_op = [-1] + [e[2] for e in events]
    node_is_call = [False] + [e[1] == 0 for e in events]
    ret_node = [0] * n
    for node in range(1, size):
        if not node_is_call[node]:
            ret_node[node_op[node]] = node

    # Interchangeable uncertain ops (same kind and input): only orders that keep them in call order are searched.
    twin_before = [-1] * n
    last_of_class: dict[tuple, int] = {}
    for i, op in enumerate(ops):
        if op.uncertain:
            cls = (op.kind, op.value)
            twin_before[i] = last_of_class.get(cls, -1)
            last_of_class[cls] = i
    bit = [1 << i for i in range(n)]
    certain_left = sum(1 for op in ops if not op.uncertain)

    def lift(node: int) -> None:
        r = ret_node[node_op[node]]
        nxt[prv[node]] = nxt[node]
        prv[nxt[node]] = prv[node]
        nxt[prv[r]] = nxt[r]
        prv[nxt[r]] = prv[r]

    def unlift(node: int) -> None:
        r = ret_node[node_op[node]]
        nxt[prv[r]] = r
        prv[nxt[r]] = r
        nxt[prv[node]] = node
        prv[nxt[node]] = node

    state = model.init()
    linearized = 0
    cache = {(0, state)}
    stack: list[tuple[int, Hashable]] = []      # (call node, state before it)
    best_depth, best_prefix, best_state, stuck_op = -1, [], state, None
    node = nxt[0]
    steps = 0
    while certain_left and nxt[0]:
        steps += 1
        if steps > max_steps:
            return KeyResult(key, model.name, Outcome.TOO_LARGE, n, steps,
                             f"search budget of {max_steps} steps exhausted with {n} ops")
        if node_is_call[node]:
            i = node_op[node]
            op = ops[i]
            if twin_before[i] < 0 or linearized & bit[twin_before[i]]:
                new_state = model.step(state, op)
                if new_state is not _REJECT:
                    new_linearized = linearized | bit[i]
                    if (new_linearized, new_state) not in cache:
                        cache.add((new_linearized, new_state))
                        stack.append((node, state))
                        state, linearized = new_state, new_linearized
                        if not op.uncertain:
                            certain_left -= 1
                        lift(node)
                        node = nxt[0]
                        continue
            node = nxt[node]
        else:
            # A return: its op had to be linearized by now. Remember the deepest dead end for the report.
            if len(stack) > best_depth:
                best_depth, best_state, stuck_op = len(stack), state, ops[node_op[node]]
                best_prefix = [ops[node_op[c]] for c, _ in stack[-8:]]
            if not stack:
                return KeyResult(key, model.name, Outcome.VIOLATION, n, steps,
                                 _describe(best_depth, best_prefix, best_state, stuck_op, ops))
            call_node, state = stack.pop()
            i = node_op[call_node]
            linearized &= ~bit[i]
            if not ops[i].uncertain:
                certain_left += 1
            unlift(call_node)
            node = nxt[call_node]
    return KeyResult(key, model.name, Outcome.OK, n, steps)


def _describe(depth: int, prefix: list[Op], state, stuck: Op | None, ops: list[Op]) -> str:
    lines = [f"  longest linearizable prefix: {depth} of {len(ops)} ops, ending with:"]
    lines += [f"    {op}" for op in prefix]
    lines.append(f"  model state after it: {state!r}")
    if stuck is not None:
        lines.append(f"  then no pending op can be linearized before this one returns:\n    {stuck}")
        concurrent = [op for op in ops if op.call <= stuck.ret and op.ret >= stuck.call and op is not stuck]
        lines.append(f"  ops concurrent with it ({len(concurrent)}):")
        lines += [f"    {op}" for op in concurrent[:8]]
    return "\n".join(lines)
