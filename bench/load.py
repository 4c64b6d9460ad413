"""The load generator of `make bench`, a process of its own (`python -m bench.load`).

The emulator runs in the parent bench process; this one only drives the three paths, so
its event loop never competes with the emulator's threads for the parent's GIL. It reads
one JSON command per line on stdin and answers one JSON line on stdout. Every path uses the
same loop: `clients` coroutines, each calling back to back until the time is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
from aiobotocore.session import get_session
from botocore.config import Config

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc

MODEL = "amazon.titan-image-generator-v2:0"
PROMPT = "a red fox in the snow"
SIZE = (1024, 1024)
SEED = 7
Call = Callable[[], Awaitable[None]]


def bedrock_body() -> bytes:
    """What the service sends Bedrock for an OpenAI request with n=1 at SIZE."""
    config = {"width": SIZE[0], "height": SIZE[1], "numberOfImages": 1, "seed": SEED}
    body = {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": PROMPT},
        "imageGenerationConfig": config,
    }
    return json.dumps(body).encode()


def openai_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "prompt": PROMPT,
        "size": f"{SIZE[0]}x{SIZE[1]}",
        "n": 1,
        "response_format": "b64_json",
        "imageGenerationConfig": {"seed": SEED},
        **extra,
    }


def grpc_request(**extra: Any) -> pb.ImageGenerationRequest:
    request = pb.ImageGenerationRequest(
        model=MODEL,
        prompt=PROMPT,
        size=f"{SIZE[0]}x{SIZE[1]}",
        n=1,
        response_format="b64_json",
        **extra,
    )
    request.extra_params.update({"imageGenerationConfig": {"seed": SEED}})
    return request


def summary(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    ordered = sorted(latencies) or [float("nan")]
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 2),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


async def closed_loop(calls: list[Call], seconds: float) -> dict[str, float]:
    """One caller per entry of `calls`, back to back for `seconds`, after a warm-up call each."""
    latencies: list[float] = []
    errors = 0

    async def caller(call: Call, deadline: float) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await call()
            except Exception:  # a failed call is counted, not timed
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(call() for call in calls))
    started = time.perf_counter()
    await asyncio.gather(*(caller(call, started + seconds) for call in calls))
    return summary(latencies, time.perf_counter() - started, errors)


async def measure(command: dict[str, Any]) -> dict[str, Any]:
    path, clients, seconds = command["path"], command["clients"], command["seconds"]
    if path == "floor":
        config = Config(max_pool_connections=clients, retries={"max_attempts": 1}, read_timeout=120)
        session = get_session()
        async with session.create_client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=command["emulator"],
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=config,
        ) as bedrock:
            body = bedrock_body()

            async def invoke() -> None:
                answer = await bedrock.invoke_model(
                    modelId=MODEL, body=body, contentType="application/json"
                )
                await answer["body"].read()

            return await closed_loop([invoke] * clients, seconds)
    if path == "http":
        # A client (one connection) per caller: one shared httpx pool serialises 128 callers.
        async with contextlib.AsyncExitStack() as stack:
            url, request = command["http"] + "/images/generations", openai_body()
            posts: list[Call] = []
            for _ in range(clients):
                client = await stack.enter_async_context(httpx.AsyncClient(timeout=120))

                async def post(client: httpx.AsyncClient = client) -> None:
                    (await client.post(url, json=request)).raise_for_status()

                posts.append(post)
            return await closed_loop(posts, seconds)
    async with grpc.aio.insecure_channel(command["grpc"]) as channel:
        stub = pb_grpc.ImageGenerationStub(channel)  # type: ignore[no-untyped-call]
        typed = grpc_request()

        async def generate() -> None:
            async for _ in stub.Generate(typed, timeout=120):
                pass

        return await closed_loop([generate] * clients, seconds)


async def first_events(command: dict[str, Any]) -> dict[str, Any]:
    """Streaming with one preview: time to the first byte and to the first partial image."""
    firsts: list[float] = []
    partials: list[float] = []

    async def sse(client: httpx.AsyncClient) -> None:
        started, first = time.perf_counter(), None
        body = openai_body(stream=True, partial_images=1)
        async with client.stream("POST", command["http"] + "/images/generations", json=body) as r:
            async for chunk in r.aiter_bytes():
                first = first or time.perf_counter() - started
                if b"partial_image" in chunk:
                    partials.append(time.perf_counter() - started)
                    break
        firsts.append(first or float("nan"))

    async def typed(stub: pb_grpc.ImageGenerationStub) -> None:
        started, first = time.perf_counter(), None
        async for event in stub.Generate(grpc_request(partial_images=1), timeout=120):
            first = first or time.perf_counter() - started
            if event.HasField("partial_image"):
                partials.append(time.perf_counter() - started)
                break
        firsts.append(first or float("nan"))

    clients = command["clients"]
    if command["path"] == "http":
        async with httpx.AsyncClient(timeout=120) as client:
            await asyncio.gather(*(sse(client) for _ in range(clients)))
    else:
        async with grpc.aio.insecure_channel(command["grpc"]) as channel:
            stub = pb_grpc.ImageGenerationStub(channel)  # type: ignore[no-untyped-call]
            await asyncio.gather(*(typed(stub) for _ in range(clients)))
    return {
        "requests": clients,
        "first_byte_ms": round(statistics.median(firsts) * 1000, 1),
        "first_partial_ms": round(statistics.median(partials or [float("nan")]) * 1000, 1),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def open_streams(command: dict[str, Any]) -> dict[str, Any]:
    """N SSE streams held open on a slow model: memory of the service and Envoy, and whether
    every stream saw a keepalive within twice the interval."""
    count, interval = command["streams"], command["keepalive_s"]
    opened, kept_alive = asyncio.Event(), 0
    ready = 0

    async def stream(client: httpx.AsyncClient) -> None:
        nonlocal ready, kept_alive
        body = openai_body(stream=True)
        async with client.stream("POST", command["http"] + "/images/generations", json=body) as r:
            ready += 1
            if ready == count:
                opened.set()
            started = time.perf_counter()
            async for chunk in r.aiter_bytes():
                if chunk.startswith(b":") and time.perf_counter() - started < 2 * interval:
                    kept_alive += 1
                    break
            await asyncio.sleep(3 * interval)  # hold it open while the memory is read

    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        tasks = [asyncio.create_task(stream(client)) for _ in range(count)]
        try:
            await asyncio.wait_for(opened.wait(), 60)
            await asyncio.sleep(2 * interval)
            rss = {name: rss_mb(pid) for name, pid in command["pids"].items()}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "streams": count,
        "opened": ready,
        "kept_alive": kept_alive,
        "rss_mb": rss,
        "rss_total_mb": round(sum(rss.values()), 1),
    }


KINDS = {"load": measure, "sse": first_events, "streams": open_streams}


def main() -> None:
    for line in sys.stdin:
        command = json.loads(line)
        answer = asyncio.run(KINDS[command["kind"]](command))
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
