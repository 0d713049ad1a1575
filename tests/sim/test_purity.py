"""txlog/raft is a pure state machine (STYLE.md, "How that looks in memdb" 2): no I/O, no clock, no threads, no
global randomness. `random` may be imported only to annotate the injected `random.Random`."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

RAFT_DIR = Path(__file__).resolve().parents[2] / "txlog" / "raft"
FORBIDDEN = {"asyncio", "grpc", "lmdb", "time", "random", "os", "socket", "threading", "importlib", "subprocess",
             "selectors", "signal", "multiprocessing", "concurrent", "secrets", "datetime"}
TYPE_ONLY = {"random"}     # allowed as `import random` when every use of the name is inside an annotation


def _modules() -> list[Path]:
    return sorted(RAFT_DIR.glob("*.py"))


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of every node that sits inside an annotation."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
                if a is not None and a.annotation is not None:
                    roots.append(a.annotation)
            if node.returns is not None:
                roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(n) for root in roots for n in ast.walk(root)}


def test_there_is_a_core_to_check() -> None:
    assert RAFT_DIR / "core.py" in _modules()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_raft_imports_nothing_impure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: dict[str, str] = {}      # local name -> top-level module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                imported[(alias.asname or alias.name).split(".")[0]] = top
                assert top not in FORBIDDEN - TYPE_ONLY, f"{path.name}:{node.lineno} imports {alias.name}"
                assert alias.asname is None or top not in TYPE_ONLY, f"{path.name}:{node.lineno} renames {top}"
        elif isinstance(node, ast.ImportFrom):
            top = (node.module or "").split(".")[0]
            assert node.level > 0 or top not in FORBIDDEN, f"{path.name}:{node.lineno} imports from {node.module}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("__import__", "open", "exec", "eval"), \
                f"{path.name}:{node.lineno} calls {node.func.id}()"
    in_annotation = _annotation_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and imported.get(node.id) in TYPE_ONLY:
            assert id(node) in in_annotation, \
                f"{path.name}:{node.lineno} uses `{node.id}` outside a type annotation (inject a random.Random)"


def test_the_checker_catches_runtime_use_of_random(tmp_path: Path) -> None:
    """The annotation rule is not vacuous: a module calling random.random() is refused."""
    bad = tmp_path / "bad.py"
    bad.write_text("import random\n\ndef f(rng: random.Random) -> float:\n    return random.random()\n")
    with pytest.raises(AssertionError, match="outside a type annotation"):
        test_raft_imports_nothing_impure(bad)
    ok = tmp_path / "ok.py"
    ok.write_text("import random\n\ndef f(rng: random.Random) -> float:\n    return rng.random()\n")
    test_raft_imports_nothing_impure(ok)
