"""The committed generated code and descriptor set must match proto/ (run `make proto`)."""

from __future__ import annotations

from pathlib import Path

from stack.protogen import ROOT, generate


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    generate(tmp_path / "py", tmp_path / "imagegen.pb")
    committed = ROOT / "service" / "gen"
    for fresh in sorted((tmp_path / "py").rglob("*.py*")):
        relative = fresh.relative_to(tmp_path / "py")
        assert (committed / relative).read_bytes() == fresh.read_bytes(), (
            f"{relative} is stale: run `make proto`"
        )
    assert (ROOT / "gateway" / "imagegen.pb").read_bytes() == (
        tmp_path / "imagegen.pb"
    ).read_bytes(), "gateway/imagegen.pb is stale: run `make proto`"
