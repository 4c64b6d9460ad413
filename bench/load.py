"""The load generator of `make bench`, a process of its own (`python -m bench.load`).

The emulator runs in the parent bench process; this one only drives the three paths, so
its event loop never competes with the emulator's threads for the parent's GIL. It reads
one JSON command per line on stdin and answers one JSON line on stdout. Every path uses the
same loop: `clients` coroutines, each calling back to back until the time is up.

The HTTP callers use `KeepAliveClient`, a minimal HTTP/1.1 client on one keep-alive
connection each: httpx spent about 1.5 ms of CPU per 4 KB answer and 8 ms per 2 MB one, CPU
this 2-core machine then lacked for the service being measured (the floor's aiobotocore
client costs the same in every run). SSE and the open-streams test keep httpx.
"""

from __future__ import annotations

import asyncio
import functools
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import grpc
import httpx
from aiobotocore.session import get_session
from botocore.config import Config

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from service.server import keep_freed_memory

MODEL = "amazon.titan-image-generator-v2:0"
PROMPT = "a red fox in the snow"
SIZE = (1024, 1024)
SEED = 7
Call = Callable[[], Awaitable[object]]


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


class KeepAliveClient:
    """POSTs JSON on one HTTP/1.1 keep-alive connection and reads the whole answer
    (Content-Length or chunked); a non-2xx status raises."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._path = parts.path
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> bytes:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port, limit=1 << 20)
        reader, writer = self._streams
        writer.write(
            f"POST {self._path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = dict(
                (name.strip().lower(), value.strip())
                for name, _, value in (line.partition(":") for line in header_lines if line)
            )
            if "content-length" in headers:
                answer = await reader.readexactly(int(headers["content-length"]))
            else:  # chunked
                pieces = []
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    pieces.append(await reader.readexactly(size))
                    await reader.readexactly(2)
                await reader.readuntil(b"\r\n")
                answer = b"".join(pieces)
        except BaseException:
            await self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        status = int(status_line.split()[1])
        if not 200 <= status < 300:
            raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
        return answer

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


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


def threaded_loop(call: Callable[[], object], clients: int, seconds: float) -> dict[str, float]:
    """`clients` threads calling `call` back to back for `seconds`, after a warm-up call each:
    how a program using boto3 (a blocking client) runs concurrent calls."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[int] = [0] * clients

    def caller(number: int, deadline: float) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                call()
            except Exception:  # a failed call is counted, not timed
                errors[number] += 1
                continue
            latencies[number].append(time.perf_counter() - started)

    with ThreadPoolExecutor(max_workers=clients) as threads:
        list(threads.map(lambda _: call(), range(clients)))
        started = time.perf_counter()
        list(threads.map(caller, range(clients), [started + seconds] * clients))
        elapsed = time.perf_counter() - started
    return summary([t for each in latencies for t in each], elapsed, sum(errors))


def client_settings(command: dict[str, Any]) -> dict[str, Any]:
    """The Bedrock client settings of both direct paths: the emulator, one connection a
    caller, no retries."""
    config = Config(
        max_pool_connections=command["clients"], retries={"max_attempts": 1}, read_timeout=120
    )
    return {
        "region_name": "us-east-1",
        "endpoint_url": command["emulator"],
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
        "config": config,
    }


def boto3_floor(command: dict[str, Any]) -> dict[str, float]:
    """The issue's floor: boto3 `invoke_model` straight to the emulator, one thread a caller."""
    bedrock = boto3.session.Session().client("bedrock-runtime", **client_settings(command))
    body = bedrock_body()

    def invoke() -> None:
        answer = bedrock.invoke_model(modelId=MODEL, body=body, contentType="application/json")
        answer["body"].read()

    try:
        return threaded_loop(invoke, command["clients"], command["seconds"])
    finally:
        bedrock.close()


async def measure(command: dict[str, Any]) -> dict[str, Any]:
    path, clients, seconds = command["path"], command["clients"], command["seconds"]
    if path == "boto3":
        return await asyncio.to_thread(boto3_floor, command)
    if path == "aiobotocore":
        settings = client_settings(command)
        async with get_session().create_client("bedrock-runtime", **settings) as bedrock:
            body = bedrock_body()

            async def invoke() -> None:
                answer = await bedrock.invoke_model(
                    modelId=MODEL, body=body, contentType="application/json"
                )
                await answer["body"].read()

            return await closed_loop([invoke] * clients, seconds)
    if path == "http":
        # A connection per caller, as clients of an image API have.
        url, request = command["http"] + "/images/generations", json.dumps(openai_body()).encode()
        clients_ = [KeepAliveClient(url) for _ in range(clients)]
        try:
            posts: list[Call] = [functools.partial(client.post, request) for client in clients_]
            return await closed_loop(posts, seconds)
        finally:
            for client in clients_:
                await client.close()
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
    # The service's malloc settings, for every path alike: with glibc's defaults each 2 MB
    # answer read here costs fresh mmapped pages, 7 ms of this process's CPU per answer
    # instead of 2, CPU the 2-core machine then lacks for what is being measured.
    keep_freed_memory()
    for line in sys.stdin:
        command = json.loads(line)
        answer = asyncio.run(KINDS[command["kind"]](command))
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
