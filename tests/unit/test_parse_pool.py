"""Large bodies parsed in worker processes: same answers as inline, bounded, and robust to a
worker that dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service import mcp, multipart, openai_edits, openai_http
from service.errors import ApiError
from service.parse_pool import PARSE_INLINE_BYTES, BodyParser, Checks, generation_request
from service.pipeline import Pipeline

MODEL = "stability.stable-image-core-v1:1"
PAD = "p" * (PARSE_INLINE_BYTES + 1)  # makes any body large


def large(fields: dict[str, Any], raw: bytes = b"") -> bytes:
    """A JSON body over the inline limit: `fields` plus a padding extra (and raw members)."""
    body = json.dumps({**fields, "padding": PAD}).encode()
    return body[:-1] + raw + b"}" if raw else body


def kill_self(body: bytes) -> None:
    """A parse whose worker dies under it, as when the kernel kills it for memory."""
    os.kill(os.getpid(), signal.SIGKILL)


def wait_for(body: bytes, path: str) -> int:
    """A parse that holds its worker until `path` exists (at most 30 s)."""
    for _ in range(3000):
        if os.path.exists(path):
            return len(body)
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def process_id(body: bytes) -> int:
    return os.getpid()


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ApiError as error:
        return (error.status, error.param, error.code, error.message)


BODIES = [
    large({"model": MODEL, "prompt": "a red fox", "n": 2, "negative_prompt": "blurry"}),
    large({"model": MODEL}, b',"prompt": "\\ud800"'),  # a lone surrogate, valid JSON
    large({"model": MODEL}, b',"prompt": "ab\xffcd"'),  # bytes that are not UTF-8
    large({"model": MODEL, "prompt": "x", "deep": json.loads("[" * 40 + "]" * 40)}),
    large({"model": MODEL, "prompt": "x", "many": [0] * 100_001}),
    large({"model": MODEL, "prompt": 5}),
    large({"model": MODEL})[:-2],  # cut short: not JSON
]


@pytest.fixture(scope="module")
def parser() -> Any:
    pool = BodyParser(workers=1)
    yield pool
    asyncio.run(pool.close())


def in_worker(parser: BodyParser, function: Callable[..., Any], *args: Any) -> Any:
    async def parse() -> Any:
        return await parser.parse(function, *args)

    return asyncio.run(parse())


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_a_worker_answers_as_the_inline_parse_does(parser: BodyParser, body: bytes) -> None:
    assert len(body) > PARSE_INLINE_BYTES
    inline = outcome(lambda: openai_http.parse_request(body, {"x-amzn-bedrock-trace": "enabled"}))
    worker = outcome(
        lambda: in_worker(
            parser, openai_http.parse_request, body, {"x-amzn-bedrock-trace": "enabled"}
        )
    )
    assert worker == inline


def test_edits_and_mcp_messages_parse_in_a_worker_too(parser: BodyParser) -> None:
    image = b"\x89PNG" + b"i" * (2 * PARSE_INLINE_BYTES)
    boundary = "b0undary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"'
            "\r\nContent-Type: image/png\r\n\r\n")  # fmt: skip
    form = head.encode() + image + f"\r\n--{boundary}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    request = in_worker(parser, openai_edits.parse_edit_request, form, content_type, {}, True,
                        multipart.Limits())  # fmt: skip
    assert list(request.image) == [image] and request.variation
    too_large = outcome(lambda: in_worker(
        parser, openai_edits.parse_edit_request, form, content_type, {}, False,
        multipart.Limits(max_file_bytes=PARSE_INLINE_BYTES),
    ))  # fmt: skip
    assert too_large[:3] == (413, "image", "part_too_large")

    arguments = {"prompt": PAD, "model": MODEL}
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": mcp.TOOL_NAME, "arguments": arguments}}  # fmt: skip
    incoming = in_worker(parser, mcp.read_message, json.dumps(call).encode())
    assert incoming.message_id == 7 and incoming.tool.request.prompt == PAD


def test_a_worker_that_dies_is_a_503_and_the_next_body_gets_a_new_one(
    parser: BodyParser,
) -> None:
    lost = outcome(lambda: in_worker(parser, kill_self, PAD.encode()))
    assert lost[:3] == (503, None, "parse_worker_lost")
    assert in_worker(parser, len, PAD.encode()) == len(PAD)


def test_a_worker_killed_while_idle_is_replaced_before_the_next_body(
    parser: BodyParser,
) -> None:
    first = in_worker(parser, process_id, PAD.encode())
    os.kill(first, signal.SIGKILL)
    for _ in range(500):  # it is gone within milliseconds; at most 5 s
        try:
            os.kill(first, 0)
        except ProcessLookupError:
            break
        if parser._idle and not parser._idle[0].process.is_alive():
            break
        time.sleep(0.01)
    assert in_worker(parser, process_id, PAD.encode()) not in (first, os.getpid())


def test_large_bodies_beyond_the_waiting_room_get_a_503(tmp_path: Path) -> None:
    release = tmp_path / "release"
    body = PAD.encode()
    fits = 4

    async def scenario() -> list[Any]:
        parser = BodyParser(workers=1, bytes_per_worker=fits * len(body))
        admitted = [
            asyncio.ensure_future(parser.parse(wait_for, body, str(release))) for _ in range(fits)
        ]
        await asyncio.sleep(0)  # all of them admitted (one parsing, the rest waiting)
        with pytest.raises(ApiError) as refused:
            await parser.parse(len, body)
        release.touch()
        results = await asyncio.gather(*admitted)
        await parser.close()
        return [refused.value.status, refused.value.code, *results]

    status, code, *results = asyncio.run(scenario())
    assert (status, code) == (503, "server_busy")
    assert results == [len(PAD)] * fits


def test_a_client_that_leaves_gives_the_worker_back_when_its_parse_is_done(
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    body = PAD.encode()

    async def scenario() -> int:
        parser = BodyParser(workers=1)
        leaving = asyncio.ensure_future(parser.parse(wait_for, body, str(release)))
        await asyncio.sleep(0.05)
        leaving.cancel()
        release.touch()
        result = await parser.parse(len, body)  # waits for the worker, which is not lost
        await parser.close()
        return result

    assert asyncio.run(scenario()) == len(PAD)


def test_close_stops_the_workers() -> None:
    async def scenario() -> list[Any]:
        parser = BodyParser(workers=2)
        await asyncio.gather(parser.parse(len, PAD.encode()), parser.parse(len, PAD.encode()))
        processes = [worker.process for worker in parser._idle]
        await parser.close()
        return processes

    processes = asyncio.run(scenario())
    assert processes and not any(process.is_alive() for process in processes)


def test_small_bodies_are_parsed_here_large_ones_elsewhere(parser: BodyParser) -> None:
    assert in_worker(parser, process_id, b"{}") == os.getpid()
    assert in_worker(parser, process_id, PAD.encode()) != os.getpid()


def padded(fields: dict[str, Any], raw: bytes = b"") -> bytes:
    """A JSON body over the inline limit by white space alone (no extra field)."""
    body = json.dumps(fields).encode()
    return (body[:-1] + raw + b"}" if raw else body) + b" " * PARSE_INLINE_BYTES


CHECKED = [
    padded({"model": MODEL, "prompt": "x" * 20_000}),  # longer than the model takes
    padded({"model": MODEL, "prompt": "a fox", "values": ["v"] * 1000}),  # an extra it refuses
    padded({"model": MODEL, "prompt": "a fox", "response_format": "url"}),  # no bucket here
    padded({"model": "gpt-image-1", "prompt": "a fox", "n": 11}),
    padded({"model": "gpt-image-1", "prompt": "a fox"}, b',"seed": 7'),  # accepted
]


@pytest.mark.parametrize("body", CHECKED, ids=range(len(CHECKED)))
def test_a_worker_refuses_a_generation_as_the_pipeline_does(body: bytes) -> None:
    pipeline = Pipeline(None, None, {})  # type: ignore[arg-type]  # checks only

    def in_server() -> Any:
        request = openai_http.parse_request(body, {})
        pipeline.prepare(request)
        return request

    async def in_a_worker() -> Any:
        parser = BodyParser(workers=1, checks=Checks())
        try:
            return await parser.parse(generation_request, body, {})
        finally:
            await parser.close()

    assert outcome(lambda: asyncio.run(in_a_worker())) == outcome(in_server)


def test_start_readies_every_worker_before_the_first_large_body() -> None:
    async def scenario() -> tuple[int, bool, int]:
        parser = BodyParser(workers=2)
        await parser.start()
        started = [worker.process for worker in parser._idle]
        alive = all(process.is_alive() for process in started)
        assert await parser.parse(len, PAD.encode()) == len(PAD)
        # The parse used a started worker: none was added.
        reused = {worker.process.pid for worker in parser._idle} == {p.pid for p in started}
        await parser.close()
        return len(started), alive and reused, sum(p.is_alive() for p in started)

    assert asyncio.run(scenario()) == (2, True, 0)
