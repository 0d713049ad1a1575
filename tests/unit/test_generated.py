"""The generated protobuf/gRPC code must match proto/ (rebuilt by `make proto`, never hand-edited)."""
import pathlib

from txlog.tools import genproto

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_generated_code_is_current(tmp_path):
    fresh = genproto.generate(tmp_path)
    assert fresh, "no proto files were generated"
    for path in fresh:
        relative = path.relative_to(tmp_path)
        built = ROOT / relative
        assert built.exists(), f"{relative} is missing: run `make proto`"
        assert built.read_text() == path.read_text(), f"{relative} is stale against proto/: run `make proto`"
