"""Build the generated protobuf/gRPC modules from proto/*.proto (the one way they are made)."""
import pathlib
import sys

from grpc_tools import protoc
import grpc_tools

ROOT = pathlib.Path(__file__).resolve().parents[2]
# proto file -> generated package it belongs to
TARGETS = {"txlog.proto": "txlog/generated", "entries.proto": "memdb/generated",
           "memdb.proto": "memdb/generated"}


def generate(out_root: pathlib.Path) -> list[pathlib.Path]:
    """Generate every target under out_root (mirroring the repo layout); returns the written files."""
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    written = []
    for proto, package in TARGETS.items():
        if not (ROOT / "proto" / proto).exists():
            continue
        out = out_root / package
        out.mkdir(parents=True, exist_ok=True)
        (out / "__init__.py").touch()
        rc = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={out}",
                          f"--grpc_python_out={out}", str(ROOT / "proto" / proto)])
        if rc != 0:
            raise SystemExit(f"protoc failed on {proto}")
        stem = proto.removesuffix(".proto")
        grpc_file = out / f"{stem}_pb2_grpc.py"
        # protoc writes `import x_pb2`; make it relative so the package imports from anywhere.
        text = grpc_file.read_text().replace(f"import {stem}_pb2 as", f"from . import {stem}_pb2 as")
        grpc_file.write_text(text)
        written += [out / f"{stem}_pb2.py", grpc_file]
    return written


def main() -> None:
    for path in generate(ROOT):
        print(f"generated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
