"""Streaming end to end: the official openai Python and Node SDKs, raw SSE and the typed stream.

Every request goes through the real Envoy binary to the gRPC service and, via boto3, to the
Bedrock emulator. What is asserted is the order and content of events; the only timing
assertion is the acceptance one (first byte within 1 s of a 20 s generation).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import openai
import pytest
from PIL import Image, ImageChops, ImageStat

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from stack.local import LocalStack, Ports
from tests.model_ids import NOVA, SD35, TITAN_V2
from tests.polling import wait_until

NODE_DIR = Path(__file__).resolve().parent / "node"
# One model per family. Stability makes one image per Bedrock call: n=3 is three calls.
MODELS = {"nova": NOVA, "titan": TITAN_V2, "sd35": SD35}
PARTIAL = "image_generation.partial_image"
COMPLETED = "image_generation.completed"
PROMPT = "a red fox in the snow"
CALLS_PER_REQUEST = 4  # BEDROCK_CALLS_PER_REQUEST's default: calls of one request at once

Event = dict[str, Any]


# ----------------------------------------------------------------------------- helpers


def decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def check_event_order(events: list[Event], n: int, partial_images: int) -> None:
    """What every client must see: each image's previews, in order, right before it; images
    in any order; usage once, on the last completed event; one size and format throughout."""
    block = partial_images + 1
    assert len(events) == n * block, [event["type"] for event in events]
    indexes = []
    for start in range(0, len(events), block):
        group = events[start : start + block]
        assert [event["type"] for event in group] == [PARTIAL] * partial_images + [COMPLETED]
        assert [event["partial_image_index"] for event in group[:-1]] == list(range(partial_images))
        index = group[-1]["image_index"]
        assert {event["image_index"] for event in group} == {index}
        indexes.append(index)
    assert sorted(indexes) == list(range(n))
    completed = [event for event in events if event["type"] == COMPLETED]
    assert all("usage" not in event for event in completed[:-1])
    usage = completed[-1]["usage"]
    assert usage["output_tokens"] == n
    assert usage["input_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + n
    assert usage["input_tokens_details"] == {
        "text_tokens": usage["input_tokens"],
        "image_tokens": 0,
    }
    for event in events:
        assert (event["size"], event["output_format"], event["background"]) == (
            "1024x1024",
            "png",
            "opaque",
        )
        assert event["created_at"] == events[0]["created_at"]


def sse_messages(lines: Iterable[str]) -> Iterator[Event]:
    """Raw SSE: {"comment": text} for a comment, {"event": name, "data": text} otherwise."""
    fields: list[str] = []
    for line in lines:
        if line:
            fields.append(line)
            continue
        if not fields:
            continue
        if all(field.startswith(":") for field in fields):
            yield {"comment": " ".join(field[1:].strip() for field in fields)}
        else:
            message: Event = {"event": None, "data": ""}
            for field in fields:
                name, _, value = field.partition(":")
                message[name] = value.removeprefix(" ")
            yield message
        fields = []
    assert not fields, f"the stream ended inside a message: {fields}"


# ----------------------------------------------------------------------------- Node SDK


def _node_sdk_installed(pinned: str) -> bool:
    """npm writes node_modules/.package-lock.json last, so an interrupted install is redone."""
    modules = NODE_DIR / "node_modules"
    try:
        installed = json.loads((modules / "openai" / "package.json").read_text())
    except (OSError, ValueError):
        return False
    return (modules / ".package-lock.json").exists() and installed.get("version") == pinned


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` binary, with the pinned openai SDK installed from the npm registry once.

    xdist workers share tests/e2e/node, so the install runs under an exclusive file lock and
    the others wait for it (bounded) and then find it done.
    """
    binary = shutil.which("node")
    if binary is None:
        pytest.skip("`node` is not installed: the openai Node SDK tests need Node.js 20+ and npm")
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["openai"]
    digest = hashlib.sha256(str(NODE_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"bedrock-images-npm-{digest}.lock"
    with lock_path.open("w") as lock:
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test worker held {lock_path} for 10 minutes")
                time.sleep(0.2)
        try:
            if not _node_sdk_installed(pinned):
                npm = shutil.which("npm")
                if npm is None:
                    pytest.fail("`node` is installed but `npm` is not: cannot install the SDK")
                done = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                    cwd=NODE_DIR,
                    capture_output=True,
                    text=True,
                    timeout=540,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
                if done.returncode != 0 or not _node_sdk_installed(pinned):
                    pytest.fail(f"npm ci in {NODE_DIR} failed:\n{done.stdout}\n{done.stderr}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return binary


def run_node(node: str, base_url: str, request: Event, options: Event | None = None) -> list[Event]:
    """Streams one request with the Node SDK; its printed lines, the last `done` or `error`."""
    done = subprocess.run(
        [
            node,
            str(NODE_DIR / "stream.mjs"),
            base_url,
            json.dumps(request),
            json.dumps(options or {}),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and ("done" in lines[-1] or "error" in lines[-1]), done.stdout[-2000:]
    return lines


# ----------------------------------------------------------------------------- both SDKs

MATRIX = [
    pytest.param(model, partial_images, n, id=f"{name}-partial{partial_images}-n{n}")
    for name, model in MODELS.items()
    for partial_images in (0, 3)
    for n in (1, 3)
]


@pytest.mark.parametrize(("model", "partial_images", "n"), MATRIX)
def test_python_sdk_streams_previews_images_and_usage(
    client: openai.OpenAI, model: str, partial_images: int, n: int
) -> None:
    stream = client.images.generate(
        model=model,
        prompt=PROMPT,
        n=n,
        stream=True,
        partial_images=partial_images,
        response_format="b64_json",
    )
    with stream:
        events: list[Event] = [event.to_dict() for event in stream]
    check_event_order(events, n, partial_images)

    # Previews are renderings of the finished image: same size, far fewer bytes, and each
    # closer to the image than the one before.
    images = {e["image_index"]: e["b64_json"] for e in events if e["type"] == COMPLETED}
    for index, b64 in images.items():
        final = decode(b64)
        assert (final.size, final.format) == ((1024, 1024), "PNG")
        previews = [
            e["b64_json"] for e in events if e["type"] == PARTIAL and e["image_index"] == index
        ]
        distances = []
        for preview in previews:
            assert len(base64.b64decode(preview)) < len(base64.b64decode(b64)) / 2
            frame = decode(preview)
            assert (frame.size, frame.format) == (final.size, "PNG")
            difference = ImageChops.difference(frame.convert("RGB"), final.convert("RGB"))
            distances.append(sum(ImageStat.Stat(difference).mean))
        assert distances == sorted(distances, reverse=True)
        assert len(set(distances)) == len(distances)


@pytest.mark.parametrize(("model", "partial_images", "n"), MATRIX)
def test_node_sdk_streams_previews_images_and_usage(
    node: str, stack: LocalStack, model: str, partial_images: int, n: int
) -> None:
    request = {"model": model, "prompt": PROMPT, "n": n, "partial_images": partial_images,
               "response_format": "b64_json"}  # fmt: skip
    lines = run_node(node, stack.base_url, request)
    assert lines[-1] == {"done": True}
    events = lines[:-1]
    check_event_order(events, n, partial_images)
    finals = {e["image_index"]: e["bytes"] for e in events if e["type"] == COMPLETED}
    for event in events:
        assert event["format"] == "png"
        if event["type"] == PARTIAL:
            assert 0 < event["bytes"] < finals[event["image_index"]] / 2


def test_python_sdk_gets_an_ordinary_http_error_before_the_stream(client: openai.OpenAI) -> None:
    """Nothing was sent yet: a plain 400 with the OpenAI body, not an SSE stream."""
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model=NOVA, prompt=PROMPT, n=11, stream=True)
    assert info.value.param == "n"
    assert "'n'" in info.value.message


def test_node_sdk_gets_an_ordinary_http_error_before_the_stream(
    node: str, stack: LocalStack
) -> None:
    [line] = run_node(node, stack.base_url, {"model": NOVA, "prompt": PROMPT, "n": 11})
    error = line["error"]
    assert (error["class"], error["status"], error["param"]) == ("BadRequestError", 400, "n")
    assert "'n'" in error["message"]


def _fail_one_of_two_calls(stack: LocalStack) -> None:
    """Of a two-call request, one image arrives at once and the other call fails a second
    later: the error comes after a completed event, mid-stream."""
    stack.emulator.faults.set(SD35, kind="internal", latency_s=1.0, times=1)


def test_python_sdk_raises_api_error_for_a_fault_mid_stream(
    client: openai.OpenAI, stack: LocalStack
) -> None:
    _fail_one_of_two_calls(stack)
    stream = client.images.generate(model=SD35, prompt=PROMPT, n=2, stream=True)
    received = []
    with stream, pytest.raises(openai.APIError) as info:
        for event in stream:
            received.append(event.type)
    assert received == [COMPLETED]
    assert type(info.value) is openai.APIError  # in-band: no HTTP status to map
    assert "InternalServerException" in info.value.message
    assert info.value.code == "upstream_error"


def test_node_sdk_raises_api_error_for_a_fault_mid_stream(node: str, stack: LocalStack) -> None:
    _fail_one_of_two_calls(stack)
    lines = run_node(node, stack.base_url, {"model": SD35, "prompt": PROMPT, "n": 2})
    assert [line.get("type") for line in lines[:-1]] == [COMPLETED]
    error = lines[-1]["error"]
    assert (error["class"], error["api_error"]) == ("APIError", True)
    assert "InternalServerException" in error["message"]


def test_python_sdk_url_streaming_carries_url_and_b64(client: openai.OpenAI) -> None:
    stream = client.images.generate(
        model=TITAN_V2, prompt=PROMPT, n=2, stream=True, partial_images=1, response_format="url"
    )
    with stream:
        events: list[Event] = [event.to_dict() for event in stream]
    check_event_order(events, 2, 1)
    assert all("url" not in event for event in events if event["type"] == PARTIAL)
    for event in (event for event in events if event["type"] == COMPLETED):
        download = httpx.get(event["url"], timeout=10)
        assert download.status_code == 200
        assert download.content == base64.b64decode(event["b64_json"])


def test_node_sdk_url_streaming_carries_url_and_b64(node: str, stack: LocalStack) -> None:
    request = {"model": TITAN_V2, "prompt": PROMPT, "response_format": "url"}
    [completed, done] = run_node(node, stack.base_url, request)
    assert done == {"done": True}
    assert completed["type"] == COMPLETED and completed["bytes"] > 0
    download = httpx.get(completed["url"], timeout=10)
    assert download.status_code == 200
    assert len(download.content) == completed["bytes"]


# ----------------------------------------------------------------------------- the wire


def test_sse_wire_format(stack: LocalStack) -> None:
    """Keepalive first (it releases the headers), `event:` names matching `data.type`,
    `[DONE]` last, and no header of the machinery leaking."""
    body = {"model": NOVA, "prompt": PROMPT, "n": 2, "stream": True, "partial_images": 1}
    url = f"{stack.base_url}/images/generations"
    with httpx.stream("POST", url, json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert "x-http-status" not in response.headers
        messages = list(sse_messages(response.iter_lines()))
    assert messages[0] == {"comment": "keepalive"}
    assert messages[-1] == {"event": None, "data": "[DONE]"}
    events = [message for message in messages if "comment" not in message]
    payloads = [json.loads(event["data"]) for event in events[:-1]]
    assert [event["event"] for event in events[:-1]] == [p["type"] for p in payloads]
    check_event_order(payloads, 2, 1)


def test_fault_after_first_byte_is_an_in_band_error_then_a_clean_end(stack: LocalStack) -> None:
    body = {"model": NOVA, "prompt": f"{PROMPT} [[fault:model_timeout]]", "stream": True}
    url = f"{stack.base_url}/images/generations"
    with httpx.stream("POST", url, json=body, timeout=30) as response:
        assert response.status_code == 200
        messages = list(sse_messages(response.iter_lines()))  # raises if cut mid-chunk
    events = [message for message in messages if "comment" not in message]
    assert [event["event"] for event in events] == ["error"]
    payload = json.loads(events[0]["data"])
    assert payload["type"] == "error"
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert "ModelTimeoutException" in payload["error"]["message"]
    assert payload["error"]["code"] == "model_timeout"


def test_images_arrive_as_they_finish(client: openai.OpenAI, stack: LocalStack) -> None:
    """n=3 on a one-image-per-call model, one call slow: the two finished images reach the
    client while that call is still running at Bedrock."""
    stack.emulator.faults.set(SD35, kind="latency", latency_s=2.0, times=1)
    stream = client.images.generate(model=SD35, prompt=PROMPT, n=3, stream=True)
    bedrock_busy_at_each_image = []
    with stream:
        for _ in stream:
            calls = stack.emulator.calls.snapshot()
            bedrock_busy_at_each_image.append(any(c.finished_at is None for c in calls))
    assert bedrock_busy_at_each_image[:2] == [True, True]
    assert len(bedrock_busy_at_each_image) == 3


# ----------------------------------------------------------------------------- cancellation


def _assert_no_call_starts_after(stack: LocalStack, gone: float) -> int:
    """The calls already at Bedrock finish there (their answers are dropped); none other
    starts after the client is gone, even once their slots are free. Returns the count.

    Each test leaves at a moment when no slot is about to free up (the calls running then
    need `latency` more seconds), so a call the service was right to start just before it
    learnt of the disconnect cannot be mistaken for one started after it."""
    wait_until(lambda: stack.emulator.in_flight == 0)
    time.sleep(0.5)  # a queued call would start right after the slots free up
    calls = stack.emulator.calls.snapshot()
    assert [call.started_at <= gone for call in calls] == [True] * len(calls)
    assert stack.emulator.in_flight == 0
    return len(calls)


def test_client_disconnect_cancels_pending_bedrock_calls(
    client: openai.OpenAI, stack: LocalStack
) -> None:
    """n=10 one-image calls: 4 run at once, 6 wait. The client leaves: the 6 never start."""
    prompt = f"{PROMPT} [[fault:latency=1.5]]"
    stream = client.images.generate(model=SD35, prompt=prompt, n=10, stream=True)
    wait_until(lambda: len(stack.emulator.calls) == CALLS_PER_REQUEST)
    stream.close()
    assert _assert_no_call_starts_after(stack, time.monotonic()) == CALLS_PER_REQUEST


def test_disconnect_while_images_stream_stops_the_rest(stack: LocalStack) -> None:
    """The client leaves after the first image, once the first four calls have handed their
    slots to the next four: the last two never start."""
    body = {"model": SD35, "prompt": f"{PROMPT} [[fault:latency=1.5]]", "n": 10,
            "stream": True}  # fmt: skip
    url = f"{stack.base_url}/images/generations"
    with httpx.stream("POST", url, json=body, timeout=30) as response:
        # Held in a variable: a dropped line iterator would close the connection at once.
        messages = sse_messages(response.iter_lines())
        for message in messages:
            if message.get("event") == COMPLETED:
                break
        wait_until(lambda: len(stack.emulator.calls) >= 2 * CALLS_PER_REQUEST)
    _assert_no_call_starts_after(stack, time.monotonic())


@pytest.fixture
def stub(stack: LocalStack) -> Iterator[pb_grpc.ImageGenerationStub]:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        yield pb_grpc.ImageGenerationStub(channel)


def _slow_typed_request() -> pb.ImageGenerationRequest:
    return pb.ImageGenerationRequest(
        model=SD35, prompt=f"{PROMPT} [[fault:latency=1.5]]", n=10,
        response_format="b64_json",
    )  # fmt: skip


def test_typed_stream_deadline_cancels_pending_bedrock_calls(
    stub: pb_grpc.ImageGenerationStub, stack: LocalStack
) -> None:
    call = stub.Generate(_slow_typed_request(), timeout=1.0)
    wait_until(lambda: len(stack.emulator.calls) == CALLS_PER_REQUEST)
    with pytest.raises(grpc.RpcError) as info:
        list(call)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert _assert_no_call_starts_after(stack, time.monotonic()) == CALLS_PER_REQUEST


def test_typed_stream_cancel_cancels_pending_bedrock_calls(
    stub: pb_grpc.ImageGenerationStub, stack: LocalStack
) -> None:
    call = stub.Generate(_slow_typed_request(), timeout=30)
    wait_until(lambda: len(stack.emulator.calls) == CALLS_PER_REQUEST)
    call.cancel()
    assert _assert_no_call_starts_after(stack, time.monotonic()) == CALLS_PER_REQUEST


def test_typed_stream_error_mid_stream_is_a_grpc_status(
    stub: pb_grpc.ImageGenerationStub, stack: LocalStack
) -> None:
    _fail_one_of_two_calls(stack)
    request = pb.ImageGenerationRequest(
        model=SD35, prompt=PROMPT, n=2, partial_images=1, response_format="b64_json"
    )
    kinds = []
    with pytest.raises(grpc.RpcError) as info:
        for event in stub.Generate(request, timeout=30):
            kinds.append(event.WhichOneof("event"))
    assert kinds == ["partial_image", "image"]
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "InternalServerException" in (info.value.details() or "")


# ----------------------------------------------------------------------------- long generations


def _duration_s(value: str) -> float:
    return float(value.removesuffix("s"))


def test_envoy_timeouts_let_a_five_minute_generation_through(stack: LocalStack) -> None:
    """Envoy's effective config: no total-duration limit on the route, and idle limits well
    above five minutes of silence (a non-streaming answer sends nothing until it is done)."""
    admin = f"http://127.0.0.1:{stack.ports.envoy_admin}/config_dump"
    configs = httpx.get(admin, timeout=10).json()["configs"]
    by_type = {config["@type"].rsplit(".", 1)[-1]: config for config in configs}
    listeners = by_type["ListenersConfigDump"]["static_listeners"]
    [listener] = [item for item in listeners if item["listener"]["name"] == "openai_http"]
    manager = listener["listener"]["filter_chains"][0]["filters"][0]["typed_config"]
    assert _duration_s(manager["stream_idle_timeout"]) > 300
    route_configs = by_type["RoutesConfigDump"]["static_route_configs"]
    [routes] = [item for item in route_configs if item["route_config"]["name"] == "openai"]
    for host in routes["route_config"]["virtual_hosts"]:
        # Every forwarding route (GET /openapi.json is answered by Envoy itself).
        for route in (route for route in host["routes"] if "direct_response" not in route):
            assert route["route"].get("timeout") == "0s"  # absent: Envoy's 15 s default
            assert _duration_s(route["route"]["idle_timeout"]) > 300


def optional_node(request: pytest.FixtureRequest) -> str | None:
    try:
        return cast(str, request.getfixturevalue("node"))
    except pytest.skip.Exception:
        return None


def test_twenty_second_generation_with_keepalives(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acceptance: Bedrock takes 20 s, keepalives every 2 s. The first byte comes within 1 s,
    and clients with a 5 s timeout finish: raw httpx, the Python SDK and the Node SDK at once.

    Envoy's idle timeout is cut to 5 s here, so the stream survives only because keepalives
    flow; its route timeout (0 s: none) is what lets it outlive Envoy's 15 s default.
    Without `node` the two Python clients still run.
    """
    node = optional_node(request)
    monkeypatch.setenv("IDLE_TIMEOUT", "5s")
    with LocalStack(
        ports=Ports.free(), service_env={"SSE_KEEPALIVE_INTERVAL": "2"}, emulator_latency_s=20
    ) as slow:
        body = {"model": NOVA, "prompt": PROMPT, "partial_images": 1,
                "response_format": "b64_json"}  # fmt: skip

        def raw() -> tuple[float, list[Event]]:
            started = time.monotonic()
            with (
                httpx.Client(timeout=httpx.Timeout(5.0)) as http,
                http.stream(
                    "POST", f"{slow.base_url}/images/generations", json={**body, "stream": True}
                ) as response,
            ):
                lines = response.iter_lines()
                first = next(lines)
                first_byte_s = time.monotonic() - started
                return first_byte_s, list(sse_messages([first, *lines]))

        def python_sdk() -> list[Event]:
            sdk = openai.OpenAI(
                base_url=slow.base_url, api_key="test-key", max_retries=0, timeout=5.0
            )
            with sdk, sdk.images.generate(
                model=NOVA, prompt=PROMPT, partial_images=1, response_format="b64_json",
                stream=True,
            ) as stream:  # fmt: skip
                return [event.to_dict() for event in stream]

        threads = ThreadPoolExecutor(max_workers=2)
        with threads:
            raw_result = threads.submit(raw)
            python_result = threads.submit(python_sdk)
            node_lines = run_node(node, slow.base_url, body, {"timeout": 5000}) if node else None
            first_byte_s, messages = raw_result.result(timeout=60)
            python_events = python_result.result(timeout=60)

    assert first_byte_s < 1.0
    assert messages[0] == {"comment": "keepalive"}
    # 20 s of waiting at one keepalive per 2 s, all before the first event.
    first_event = next(i for i, message in enumerate(messages) if "comment" not in message)
    assert first_event >= 8
    events = [message for message in messages[first_event:] if "comment" not in message]
    assert [event["event"] for event in events] == [PARTIAL, COMPLETED, None]
    check_event_order(python_events, 1, 1)
    if node_lines is not None:
        assert node_lines[-1] == {"done": True}
        check_event_order(node_lines[:-1], 1, 1)
