"""`make bench`: the service beside the floor (a direct Bedrock call), in one run.

One local stack on free ports (emulator, S3, service, Envoy). The emulator answers every
generation with a canned PNG (4 KB or a 2 MB 1024² picture) after a chosen latency, so it
costs next to nothing and the four paths get identical work:
- boto3, the floor the targets are measured against (issue 11): boto3 `invoke_model`
  straight to the emulator, the same Titan v2 body, one thread per caller;
- aiobotocore: the same call on asyncio, the client the service itself uses, reported
  beside the floor as the stricter reference;
- http: the OpenAI JSON API through Envoy (b64_json);
- grpc: the typed Generate API straight to the service.
Cells run in rounds, the paths interleaved (and rotated) inside each cell; figures are
medians over the rounds. The load generator is a process of its own (bench/load.py).
Nothing here asserts on time. Settings: BENCH_SECONDS per measurement (default 4),
BENCH_ROUNDS (2), BENCH_STREAMS open SSE streams (1000, 0 to skip), BENCH_CELLS (a comma
list of the names in CELLS and sse_3s, default all), BENCH_OUT (folder, default .run/bench).
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bench.load import rss_mb
from emulator.render import render
from stack.local import LocalStack, Ports

FLOOR = "boto3"
PATHS = (FLOOR, "aiobotocore", "http", "grpc")


@dataclass(frozen=True)
class Cell:
    name: str
    image: str  # "4kb" or "2mb"
    clients: int
    latency_s: float = 0.0


CELLS = (
    Cell("4kb_c1", "4kb", 1),
    Cell("4kb_c16", "4kb", 16),
    Cell("2mb_c1", "2mb", 1),
    Cell("2mb_c16", "2mb", 16),
    Cell("lat0.5_c16", "4kb", 16, 0.5),
    Cell("lat0.5_c128", "4kb", 128, 0.5),
)
SSE_LATENCY_S = 3.0
SSE_CLIENTS = 4
KEEPALIVE_S = 1.0

# Issue 11's targets: (cell, what, bound) where what is "added_p50_ms" (HTTP over the floor,
# at most bound), "rps_ratio" (HTTP / floor, at least bound) or "grpc_over_http". Each is
# also reported against the aiobotocore client ("vs_aiobotocore" in the results).
TARGETS: tuple[tuple[str, str, float], ...] = (
    ("4kb_c1", "added_p50_ms", 2.0),
    ("2mb_c1", "added_p50_ms", 8.0),
    ("4kb_c16", "rps_ratio", 0.6),
    ("2mb_c16", "rps_ratio", 0.6),
    ("4kb_c16", "grpc_over_http", 1.0),
    ("2mb_c16", "grpc_over_http", 1.0),
    ("lat0.5_c16", "rps_ratio", 0.9),
    ("lat0.5_c128", "rps_ratio", 0.8),
)
STARTUP_TARGET_S = 2.0
STREAMS_RSS_TARGET_MB = 1024.0


def png(image: Image.Image, level: int) -> str:
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=level)
    return base64.b64encode(out.getvalue()).decode()


def canned_images() -> dict[str, str]:
    """Two 1024² PNGs: a flat picture (about 4 KB) and one with photo-like grain (about 2 MB,
    what a real model returns)."""
    flat = Image.new("RGB", (1024, 1024), (200, 80, 40))
    ImageDraw.Draw(flat).ellipse((300, 300, 700, 700), fill=(250, 220, 60))
    picture = Image.open(io.BytesIO(render(1024, 1024, "a red fox", 7, "png"))).convert("RGB")
    grain = Image.frombytes("RGB", picture.size, random.Random(7).randbytes(1024 * 1024 * 3))
    return {"4kb": png(flat, 9), "2mb": png(Image.blend(picture, grain, 0.08), 1)}


class LoadGenerator:
    """bench/load.py in its own process: one JSON command out, one JSON answer back."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.load"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator stopped (exit code {self.process.wait()})")
        return dict(json.loads(line))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: round(statistics.median(run[key] for run in runs), 2) for key in runs[0]}


def startup_s(stack: LocalStack) -> float:
    """A fresh Envoy in front of a ready service: seconds to the first answer through it."""
    stack.envoy.stop()
    started = time.perf_counter()
    stack.envoy.start()
    stack.wait_until_serving()
    return round(time.perf_counter() - started, 3)


def measure(settings: dict[str, Any]) -> dict[str, Any]:
    images = canned_images()
    # Envoy's cap on requests in flight to the service must not be what the streams test hits.
    os.environ.setdefault("UPSTREAM_MAX_REQUESTS", str(settings["streams"] + 1000))
    # DRAIN_GRACE: the streams still parked on the slow model are not worth waiting for.
    service_env = {
        "LOG_LEVEL": "warning",
        "SSE_KEEPALIVE_INTERVAL": str(KEEPALIVE_S),
        "DRAIN_GRACE": "1",
    }
    stack = LocalStack(
        ports=Ports.free(),
        service_env=service_env,
        service_log=str(settings["out"] / "service.log"),
    )
    with stack:
        assert stack.service is not None and stack.envoy.process is not None
        where = {"emulator": stack.emulator.url, "http": stack.base_url, "grpc": stack.grpc_target}
        load = LoadGenerator()
        try:
            results: dict[str, Any] = {"startup_s": startup_s(stack)}
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for round_index in range(settings["rounds"]):
                for cell in settings["cells"]:
                    stack.emulator.canned_image_b64 = images[cell.image]
                    stack.emulator.latency_s = cell.latency_s
                    shift = round_index % len(PATHS)
                    for path in PATHS[shift:] + PATHS[:shift]:
                        run = load.run(
                            kind="load",
                            path=path,
                            clients=cell.clients,
                            seconds=settings["seconds"],
                            **where,
                        )
                        runs.setdefault(cell.name, {}).setdefault(path, []).append(run)
                if not settings["sse"]:
                    continue
                stack.emulator.canned_image_b64 = images["4kb"]
                stack.emulator.latency_s = SSE_LATENCY_S
                for path in ("http", "grpc"):
                    run = load.run(kind="sse", path=path, clients=SSE_CLIENTS, **where)
                    runs.setdefault("sse_3s", {}).setdefault(path, []).append(run)
            results["cells"] = {
                name: {path: median_of(path_runs) for path, path_runs in paths.items()}
                for name, paths in runs.items()
            }
            if settings["streams"]:
                stack.emulator.latency_s = 60.0
                pids = {"service": stack.service.pid, "envoy": stack.envoy.process.pid}
                results["streams"] = load.run(
                    kind="streams",
                    streams=settings["streams"],
                    keepalive_s=KEEPALIVE_S,
                    pids=pids,
                    **where,
                )
            results["rss_mb_after"] = {
                "service": rss_mb(stack.service.pid),
                "envoy": rss_mb(stack.envoy.process.pid),
            }
        finally:
            load.close()
            stack.emulator.latency_s = 0.0  # the drain must not wait for parked calls
    return results


def figure(
    what: str, reference: dict[str, float], http: dict[str, float], grpc: dict[str, float]
) -> float:
    """A target's figure for the HTTP path against a reference path."""
    if what == "added_p50_ms":
        return http["p50_ms"] - reference["p50_ms"]
    if what == "rps_ratio":
        return http["rps"] / reference["rps"]
    return grpc["rps"] / http["rps"]


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its figure and whether it is met."""
    verdicts = []
    cells = results["cells"]
    for cell, what, bound in TARGETS:
        if cell not in cells:
            continue
        floor, asyncio_client, http, grpc = (cells[cell][path] for path in PATHS)
        value, asyncio_value = (
            figure(what, reference, http, grpc) for reference in (floor, asyncio_client)
        )
        if what == "added_p50_ms":
            met = value <= bound
        else:  # a ratio: at least the bound, gRPC strictly above HTTP
            met = value > bound if what == "grpc_over_http" else value >= bound
        verdicts.append(
            {
                "cell": cell,
                "target": what,
                "bound": bound,
                "value": round(value, 2),
                "met": met,
                "vs_aiobotocore": round(asyncio_value, 2),
            }
        )
    verdicts.append(
        {
            "cell": "startup",
            "target": "startup_s",
            "bound": STARTUP_TARGET_S,
            "value": results["startup_s"],
            "met": results["startup_s"] <= STARTUP_TARGET_S,
        }
    )
    if streams := results.get("streams"):
        met = (
            streams["rss_total_mb"] < STREAMS_RSS_TARGET_MB
            and streams["kept_alive"] == streams["streams"]
        )
        verdicts.append(
            {
                "cell": "streams",
                "target": "rss_total_mb_and_keepalives",
                "bound": STREAMS_RSS_TARGET_MB,
                "value": streams["rss_total_mb"],
                "met": met,
            }
        )
    return verdicts


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# make bench, {report['when']}, commit {report['commit']}",
        "",
        f"{report['machine']['cpus']} CPUs ({report['machine']['cpu']}); "
        f"{report['settings']['seconds']} s per measurement, "
        f"{report['settings']['rounds']} rounds, medians; Titan v2 1024², n=1, b64_json.",
        "",
        "Req/s, p50, p99; then the throughput ratio to the floor (boto3) and the p50 added "
        "over it, and in brackets the same against the aiobotocore client.",
        "",
        "| cell | floor: boto3 | aiobotocore | HTTP (Envoy) | x floor, +p50 ms | gRPC "
        "| x floor, +p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, paths in report["results"]["cells"].items():
        if FLOOR not in paths:
            continue
        floor, asyncio_client = paths[FLOOR], paths["aiobotocore"]
        row = [name, *(figures_text(paths[path]) for path in (FLOOR, "aiobotocore"))]
        for path in ("http", "grpc"):
            row += [
                figures_text(paths[path]),
                f"{ratio_text(paths[path], floor)} ({ratio_text(paths[path], asyncio_client)})",
            ]
        lines.append("| " + " | ".join(row) + " |")
    if sse := report["results"]["cells"].get("sse_3s"):
        lines += [
            "",
            f"Streaming, {SSE_LATENCY_S} s model latency, {SSE_CLIENTS} at once, "
            "one partial image: "
            + "; ".join(
                f"{path}: first byte {f['first_byte_ms']} ms, first partial "
                f"{f['first_partial_ms']} ms"
                for path, f in sse.items()
            ),
        ]
    if streams := report["results"].get("streams"):
        lines += [
            "",
            f"{streams['streams']} open SSE streams ({streams['opened']} opened, "
            f"{streams['kept_alive']} saw a keepalive within {2 * KEEPALIVE_S} s): "
            f"RSS {streams['rss_mb']} MB, total {streams['rss_total_mb']} MB.",
        ]
    lines += [
        "",
        f"Start-up (fresh Envoy, ready service) to first answer: "
        f"{report['results']['startup_s']} s.",
        "",
        "| target | bound | figure (vs boto3) | met | vs aiobotocore |",
        "|---|---|---|---|---|",
    ]
    for verdict in report["targets"]:
        lines.append(
            f"| {verdict['cell']} {verdict['target']} | {verdict['bound']} | "
            f"{verdict['value']} | {'met' if verdict['met'] else 'missed'} | "
            f"{verdict.get('vs_aiobotocore', '')} |"
        )
    return "\n".join(lines) + "\n"


def figures_text(figures: dict[str, float]) -> str:
    return f"{figures['rps']}, {figures['p50_ms']} ms, {figures['p99_ms']} ms"


def ratio_text(figures: dict[str, float], reference: dict[str, float]) -> str:
    added = figures["p50_ms"] - reference["p50_ms"]
    return f"{figures['rps'] / reference['rps']:.2f}x, {added:+.1f}"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    chosen = [name for name in os.environ.get("BENCH_CELLS", "").split(",") if name]
    settings: dict[str, Any] = {
        "seconds": float(os.environ.get("BENCH_SECONDS", "4")),
        "rounds": int(os.environ.get("BENCH_ROUNDS", "2")),
        "streams": int(os.environ.get("BENCH_STREAMS", "1000")),
        "out": Path(os.environ.get("BENCH_OUT", ".run/bench")),
        "cells": [cell for cell in CELLS if not chosen or cell.name in chosen],
        "sse": not chosen or "sse_3s" in chosen,
    }
    settings["out"].mkdir(parents=True, exist_ok=True)
    results = measure(settings)
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": cpu_model(),
            "python": platform.python_version(),
        },
        "settings": settings
        | {"cells": [cell.name for cell in settings["cells"]], "out": str(settings["out"])},
        "results": results,
        "targets": judge(results),
    }
    out = settings["out"]
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
