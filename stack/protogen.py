"""Generates the Python gRPC code and Envoy's descriptor set from proto/.

Usage: python -m stack.protogen <python out dir> <descriptor set file>
`make proto` runs it; the staleness test runs it into a temporary directory and compares.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import google.api
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTO_FILES = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))


def generate(python_out: Path, descriptor_out: Path) -> None:
    googleapis = Path(google.api.__path__[0]).parent.parent  # site-packages holding google/api
    well_known = resources.files("grpc_tools") / "_proto"
    python_out.mkdir(parents=True, exist_ok=True)
    descriptor_out.parent.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{googleapis}",
        f"-I{well_known}",
        f"--python_out={python_out}",
        f"--pyi_out={python_out}",
        f"--grpc_python_out={python_out}",
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={descriptor_out}",
        *PROTO_FILES,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Every generated directory must be a package so setuptools and mypy find it.
    for proto in PROTO_FILES:
        for package in Path(proto).parents[:-1]:
            (python_out / package / "__init__.py").touch()


if __name__ == "__main__":
    generate(Path(sys.argv[1]), Path(sys.argv[2]))
