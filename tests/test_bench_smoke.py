"""`make bench` runs end to end: a tiny run writes both result files with every key.

Only the shape is checked; the figures are the benchmark's business, never a test's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_writes_results(tmp_path: Path) -> None:
    env = os.environ | {
        "BENCH_SECONDS": "0.3",
        "BENCH_ROUNDS": "1",
        "BENCH_STREAMS": "5",
        "BENCH_CELLS": "4kb_c1",
        "BENCH_OUT": str(tmp_path),
    }
    subprocess.run(
        [sys.executable, "-m", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    report = json.loads((tmp_path / "results.json").read_text())
    assert {"when", "commit", "machine", "settings", "results", "targets"} <= set(report)
    cell = report["results"]["cells"]["4kb_c1"]
    assert set(cell) == {"boto3", "aiobotocore", "http", "grpc"}
    for figures in cell.values():
        assert {"requests", "errors", "rps", "p50_ms", "p99_ms"} <= set(figures)
    assert {"startup_s", "streams", "rss_mb_after"} <= set(report["results"])
    assert {"streams", "opened", "kept_alive", "rss_mb"} <= set(report["results"]["streams"])
    assert {"4kb_c1", "startup", "streams"} <= {target["cell"] for target in report["targets"]}
    markdown = (tmp_path / "results.md").read_text()
    assert "| 4kb_c1 |" in markdown and "| target | bound | figure (vs boto3) | met |" in markdown
