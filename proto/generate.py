"""Regenerates the Python code for proto/relais/v1/*.proto into services/common/pb (`make proto`).

grpc_tools writes modules that import each other as `relais.v1.*_pb2`; they live in the shared
package as `relais.common.pb`, so those imports are rewritten. `--check` fails when the committed
code differs from what the .proto files produce.
"""

import re
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parent
OUT_DIR = PROTO_DIR.parent / "services" / "common" / "pb"
IMPORT = re.compile(r"^from relais\.v1 import ", re.MULTILINE)


def generate(target: Path) -> None:
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "relais" / "v1").glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*_pb2*.py*"):
            old.unlink()
        for module in sorted((Path(tmp) / "relais" / "v1").iterdir()):
            (target / module.name).write_text(IMPORT.sub("from relais.common.pb import ", module.read_text()))
    init = target / "__init__.py"
    init.write_text('"""Generated from proto/relais/v1 by `make proto`; do not edit."""\n')


def main() -> int:
    if "--check" not in sys.argv:
        generate(OUT_DIR)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = {p.name: p.read_text() for p in Path(tmp).iterdir()}
    current = {p.name: p.read_text() for p in OUT_DIR.iterdir() if p.is_file()}
    if fresh != current:
        print("services/common/pb is out of date: run `make proto`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
