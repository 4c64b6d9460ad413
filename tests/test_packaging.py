"""The wheel carries what the service and the Envoy renderer need at run time, so
`python -m gateway.render` works from an installed package (the container image, pip)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml

from gateway.envoy import envoy_binary

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DATA = (
    "gateway/envoy.yaml.tmpl", "gateway/edge.lua", "gateway/imagegen.pb", "gateway/openapi.json",
)  # fmt: skip


def build_wheel(tmp_path: Path) -> Path:
    """The wheel, built from a copy of the sources (a build writes build/ beside them)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("proto", "service", "emulator", "gateway", "stack"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--wheel-dir", str(tmp_path / "dist"), str(source)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("bedrock_images-*.whl")
    return wheel


def test_envoy_config_renders_from_the_built_wheel(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert set(PACKAGE_DATA) <= names
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: Apache-2.0" in archive.read(metadata).decode()
        archive.extractall(installed)
    # Run from elsewhere, with only the unpacked wheel ahead of the installed dependencies.
    env = {**os.environ, "PYTHONPATH": str(installed), "HTTP_HOST": "0.0.0.0"}
    code = "import gateway.render as r, sys; print(r.__file__); r.main(sys.argv[1:])"
    out = tmp_path / "config"
    result = subprocess.run(
        [sys.executable, "-c", code, "--bundle", str(out)],
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.startswith(str(installed))
    config = yaml.safe_load((out / "envoy.yaml").read_text())
    assert config["static_resources"]["listeners"][0]["address"]["socket_address"] == {
        "address": "0.0.0.0",
        "port_value": 8080,
    }
    # Envoy itself accepts the bundle (descriptor set included) without starting.
    subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(out / "envoy.yaml"), "-l", "error"],
        check=True, timeout=60, capture_output=True,
    )  # fmt: skip


def test_one_version_source() -> None:
    import service
    from service import mcp

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert service.__version__ == declared
    assert mcp.SERVER_INFO["version"] == declared


def test_production_modules_need_neither_emulator_nor_moto() -> None:
    """The production image drops the emulator and the local stack (Dockerfile)."""
    code = (
        "import sys\n"
        "for name in ('emulator', 'stack', 'moto'): sys.modules[name] = None\n"
        "import service.__main__, service.server, service.healthcheck\n"
        "import gateway.render, gateway.prestop\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, capture_output=True)
