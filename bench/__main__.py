"""`make bench`: latency, throughput and memory of the whole stack, written to a file.

Runs the local stack on free ports (emulator with a fixed model latency), then drives it
through Envoy with concurrent OpenAI-style requests. Targets are recorded next to the
figures; nothing here asserts on time, so shared machines do not make tests flaky.
Results go to .run/bench/results.json, an untracked path (override with BENCH_OUT);
bench/results.json is the recorded run the README quotes: copy a new run there on purpose.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from stack.local import LocalStack, Ports

MODEL_LATENCY_S = 0.5
CONCURRENCY = 16
REQUESTS = 64
TARGETS = {
    "overhead_p50_ms": 150.0,  # service + Envoy time on top of the model's own latency
    "service_rss_mb_after_large": 600.0,
}


def post(client: httpx.Client, url: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.post(url, json=body, timeout=120)
    response.raise_for_status()
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    out = Path(os.environ.get("BENCH_OUT", ".run/bench/results.json"))
    with LocalStack(ports=Ports.free(), emulator_latency_s=MODEL_LATENCY_S,
                    service_env={"LOG_LEVEL": "warning"}) as stack:  # fmt: skip
        url = f"{stack.base_url}/images/generations"
        small = {"model": "amazon.nova-canvas-v1:0", "prompt": "a red fox", "size": "512x512",
                 "response_format": "b64_json"}  # fmt: skip
        with httpx.Client() as client, ThreadPoolExecutor(CONCURRENCY) as pool:
            post(client, url, small)  # warm-up
            started = time.perf_counter()
            latencies = list(pool.map(lambda _: post(client, url, small), range(REQUESTS)))
            elapsed = time.perf_counter() - started
            large = dict(small, size="2048x2048", n=5)
            large_s = post(client, url, large)
        assert stack.service is not None
        overhead = [(t - MODEL_LATENCY_S) * 1000 for t in latencies]
        measured = {
            "throughput_rps": round(REQUESTS / elapsed, 2),
            "overhead_p50_ms": round(statistics.median(overhead), 1),
            "overhead_p95_ms": round(sorted(overhead)[int(len(overhead) * 0.95) - 1], 1),
            "large_answer_s": round(large_s, 2),
            "service_rss_mb_after_large": round(rss_mb(stack.service.pid), 1),
        }
        results: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "setup": {"model_latency_s": MODEL_LATENCY_S, "concurrency": CONCURRENCY,
                      "requests": REQUESTS, "image": "512x512 png, b64_json"},
            **measured,
            "targets": TARGETS,
            "met": {name: measured[name] <= target for name, target in TARGETS.items()},
        }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
