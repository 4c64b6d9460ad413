"""The fault matrix (issue 13): every way a generation can go wrong, end to end.

One stack of this module (Bedrock retries on, as in production), faults injected through
the real mechanisms: the emulator's fault plan, stopping the emulator or local S3, SIGTERM
to the service under a running Envoy, a client that leaves. For each fault, with the
official openai SDK as the client: the HTTP status, the OpenAI envelope (its code, a message
that says what to do and not where things live), the SDK's exception class, images
delivered against images Bedrock billed (none lost), and a normal request right after.

Streamed answers start with a keepalive, so their status is 200 whatever happens next: a
failure arrives as an in-band `error` event with the same envelope, which the SDK raises as
a plain `openai.APIError`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import openai
import pytest

from gateway.envoy import terminate, wait_for_port
from stack.local import BUCKET, HOST, LocalStack, Ports
from tests.billing import billed_images
from tests.model_ids import NOVA, SD35
from tests.polling import wait_until

SIZE = "320x320"  # Nova's smallest: the matrix is about faults, not pixels
SD_SIZE = "1024x1024"
SLOW_S = 1.0  # the slow model's latency
RETRYABLE = (429, 502, 503, 504)  # statuses whose message must say to retry


@pytest.fixture(scope="module")
def matrix() -> Iterator[LocalStack]:
    settings = {
        "BEDROCK_MAX_ATTEMPTS": "2",  # botocore retries transient faults, as in production
        "SSE_KEEPALIVE_INTERVAL": "0.5",
        "DRAIN_GRACE": "30",
    }
    with LocalStack(ports=Ports.free(), service_env=settings) as running:
        yield running


@pytest.fixture
def fresh(matrix: LocalStack) -> Iterator[LocalStack]:
    """The matrix stack with no faults, no call under way and an empty call record."""
    wait_until(lambda: matrix.emulator.in_flight == 0, timeout_s=15)
    matrix.emulator.reset()
    yield matrix
    matrix.emulator.reset()


def sdk(stack: LocalStack, timeout_s: float = 60) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key="k", max_retries=0, timeout=timeout_s)


# ----------------------------------------------------------------------------- faults

Inject = Callable[[LocalStack], contextlib.AbstractContextManager[None]]


def rule(kind: str, **options: Any) -> Inject:
    """A rule of the emulator's fault plan, for every model."""

    @contextlib.contextmanager
    def inject(stack: LocalStack) -> Iterator[None]:
        stack.emulator.faults.set(kind=kind, **options)
        try:
            yield
        finally:
            stack.emulator.faults.clear()

    return inject


@contextlib.contextmanager
def emulator_down(stack: LocalStack) -> Iterator[None]:
    """Nothing listens where Bedrock should be (the port is closed), then it comes back."""
    stack.emulator.stop()
    try:
        yield
    finally:
        stack.emulator.start()


@contextlib.contextmanager
def s3_down(stack: LocalStack) -> Iterator[None]:
    assert stack.s3 is not None
    stack.s3.stop()
    try:
        yield
    finally:
        stack.s3.start()


@dataclass(frozen=True)
class Row:
    fault: str
    inject: Inject
    status: int  # HTTP status of a non-streamed answer
    # The envelope's code; for a 200, the code of its `notice` or `incomplete` part.
    code: str | None
    sdk_error: type[openai.APIError] | None  # raised for a non-streamed request
    delivered: int  # images the client gets, each one billed, no other billed
    model: str = NOVA
    n: int = 1
    response_format: Literal["url", "b64_json"] = "b64_json"
    param: str | None = None

    @property
    def size(self) -> str:
        return SD_SIZE if self.model == SD35 else SIZE


ROWS = [
    Row("throttled on every attempt", rule("throttle"), 429, "rate_limit_exceeded",
        openai.RateLimitError, 0),
    Row("throttled once (retried)", rule("throttle", times=1), 200, None, None, 1),
    Row("model timeout (408)", rule("model_timeout"), 504, "model_timeout",
        openai.InternalServerError, 0),
    Row("Bedrock 500", rule("internal"), 502, "upstream_error", openai.InternalServerError, 0),
    Row("Bedrock 503", rule("unavailable"), 503, "service_unavailable",
        openai.InternalServerError, 0),
    Row("model error (424)", rule("model_error"), 502, "model_error",
        openai.InternalServerError, 0),
    Row("content filter", rule("filter"), 400, "content_policy_violation",
        openai.BadRequestError, 0, param="prompt"),
    Row("slow model", rule("latency", latency_s=SLOW_S), 200, None, None, 1),
    Row("emulator down", emulator_down, 503, "upstream_unreachable",
        openai.InternalServerError, 0),
    Row("S3 down for url", s3_down, 200, "storage_unavailable", None, 1,
        response_format="url"),
    Row("one split call of n=4 fails", rule("model_error", times=1), 200, "model_error", None,
        3, model=SD35, n=4),
]  # fmt: skip


@dataclass
class Outcome:
    """What the client got."""

    status: int
    images: list[str] = field(default_factory=list)  # b64_json, or the URL when there is one
    body: dict[str, Any] = field(default_factory=dict)  # the non-streamed JSON body
    error: dict[str, Any] | None = None  # the envelope's `error` (in-band when streamed)
    raised: Exception | None = None
    notices: list[str] = field(default_factory=list)  # notice codes of streamed images


def call(stack: LocalStack, row: Row) -> Outcome:
    try:
        raw = sdk(stack).images.with_raw_response.generate(
            model=row.model, prompt="a fox", n=row.n, size=row.size,
            response_format=row.response_format,
        )  # fmt: skip
    except openai.APIStatusError as exc:
        envelope = exc.response.json()
        return Outcome(exc.status_code, body=envelope, error=envelope["error"], raised=exc)
    result, body = raw.parse(), json.loads(raw.content)
    images = [item.url or item.b64_json or "" for item in result.data or []]
    return Outcome(raw.status_code, images, body)


def call_streamed(stack: LocalStack, row: Row) -> Outcome:
    stream = sdk(stack).images.generate(
        model=row.model, prompt="a fox", n=row.n, size=row.size,
        response_format=row.response_format, stream=True,
    )  # fmt: skip
    outcome = Outcome(stream.response.status_code)
    try:
        with stream:
            for event in stream:
                if event.type == "image_generation.completed":
                    outcome.images.append(event.b64_json)
                    notice = (event.model_extra or {}).get("notice")
                    if notice:
                        outcome.notices.append(notice["code"])
    except openai.APIError as exc:
        outcome.raised, outcome.error = exc, exc.body  # type: ignore[assignment]
    return outcome


def assert_envelope(stack: LocalStack, error: dict[str, Any], status: int, row: Row) -> None:
    """OpenAI-shaped, the expected code, and a message that says what to do, not where."""
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["code"] == row.code and error["param"] == row.param, error
    assert isinstance(error["type"], str) and error["type"], error
    message = error["message"]
    for internal in ("http://", "https://", HOST, "localhost", BUCKET, str(stack.ports.emulator),
                     str(stack.ports.s3), str(stack.ports.grpc)):  # fmt: skip
        assert internal not in message, f"{internal!r} in {message!r}"
    if status in RETRYABLE:
        assert "try" in message.lower() or "wait" in message.lower(), message


def assert_images(stack: LocalStack, images: list[str], row: Row) -> None:
    """Every billed image reached the client, as b64_json or a URL that downloads it."""
    assert len(images) == row.delivered == billed_images(stack.emulator)
    for image in images:
        data = (
            httpx.get(image, timeout=10).content
            if image.startswith("http")
            else base64.b64decode(image)
        )
        assert data.startswith(b"\x89PNG")


def assert_recovers(stack: LocalStack) -> None:
    result = sdk(stack).images.generate(
        model=NOVA, prompt="a fox", size=SIZE, response_format="b64_json"
    )
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(b"\x89PNG")


@pytest.mark.parametrize("row", ROWS, ids=[row.fault for row in ROWS])
def test_fault(fresh: LocalStack, row: Row) -> None:
    with row.inject(fresh):
        outcome = call(fresh, row)
    assert outcome.status == row.status
    if row.sdk_error is None:
        assert outcome.raised is None
    else:
        assert type(outcome.raised) is row.sdk_error
    if outcome.error is not None:
        assert_envelope(fresh, outcome.error, outcome.status, row)
    elif row.code == "storage_unavailable":
        notice = outcome.body["notice"]
        assert notice["code"] == row.code and notice["images"] == list(range(row.n))
        assert "b64_json" in notice["message"]
    elif row.code is not None:  # a part of the request failed after others were billed
        incomplete = outcome.body["incomplete"]
        assert incomplete["requested"] == row.n and incomplete["delivered"] == row.delivered
        assert_envelope(fresh, incomplete["error"], 502, row)
    assert_images(fresh, outcome.images, row)
    assert_recovers(fresh)


@pytest.mark.parametrize("row", ROWS, ids=[row.fault for row in ROWS])
def test_fault_streamed(fresh: LocalStack, row: Row) -> None:
    with row.inject(fresh):
        outcome = call_streamed(fresh, row)
    assert outcome.status == 200  # sent with the first keepalive, before Bedrock answered
    failed = row.status != 200 or row.code not in (None, "storage_unavailable")
    if failed:
        # In band, after the images that were produced: the SDK raises its base class.
        assert type(outcome.raised) is openai.APIError and outcome.error is not None
        assert_envelope(fresh, outcome.error, row.status if row.status != 200 else 502, row)
    else:
        assert outcome.raised is None
    if row.code == "storage_unavailable":
        assert outcome.notices == [row.code] * row.n
    assert_images(fresh, outcome.images, row)
    assert_recovers(fresh)


# ------------------------------------------------------------------------- the service restarted


def start_service(stack: LocalStack) -> None:
    """A new service process on the same port, as a restarted pod or `make run` does."""
    stack.service = subprocess.Popen(
        [sys.executable, "-m", "service"],
        env=stack.service_environment(),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(HOST, stack.ports.grpc, 30, stack.service)


def answered_by_the_service(stack: LocalStack) -> bool:
    """Envoy routes to the service again: a request it alone would refuse with a 400.

    Not `GET /v1/models`, which would fill the new process's model catalog cache."""
    response = httpx.post(f"{stack.base_url}/images/generations", json={}, timeout=10)
    return response.status_code == 400


def restart_service(stack: LocalStack) -> None:
    assert stack.service is not None
    terminate(stack.service, grace_s=40)
    start_service(stack)
    wait_until(lambda: answered_by_the_service(stack), timeout_s=30)


def test_service_restarted_under_a_running_envoy(fresh: LocalStack) -> None:
    """SIGTERM with a generation under way: it is answered (the service drains); while no
    service runs Envoy answers an OpenAI 503; the new process serves at once."""
    fresh.emulator.faults.set(NOVA, kind="latency", latency_s=SLOW_S)
    with ThreadPoolExecutor(1) as pool:
        under_way = pool.submit(
            sdk(fresh).images.generate, model=NOVA, prompt="a fox", size=SIZE,
            response_format="b64_json",
        )  # fmt: skip
        wait_until(lambda: fresh.emulator.in_flight == 1)
        assert fresh.service is not None
        terminate(fresh.service, grace_s=40)
        result = under_way.result()
    assert result.data and len(result.data) == 1 == billed_images(fresh.emulator)
    fresh.emulator.faults.clear()

    with pytest.raises(openai.InternalServerError) as down:
        sdk(fresh).images.generate(model=NOVA, prompt="a fox", size=SIZE)
    assert down.value.status_code == 503
    row = Row("service down", rule("latency"), 503, "service_unavailable", None, 0)
    assert_envelope(fresh, down.value.response.json()["error"], 503, row)

    start_service(fresh)
    wait_until(lambda: answered_by_the_service(fresh), timeout_s=30)
    assert_recovers(fresh)


# ----------------------------------------------------------------------------- the client leaves


def service_gauge(stack: LocalStack, name: str) -> float:
    """A metric without labels from the service's /metrics."""
    text = httpx.get(f"http://{HOST}:{stack.ports.metrics}/metrics", timeout=10).text
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


@pytest.mark.parametrize("stream", [True, False], ids=["stream closed", "client timeout"])
def test_client_leaves_mid_generation(fresh: LocalStack, stream: bool) -> None:
    """n=2 on SD3.5 (two calls): one is quick, one slow. The client leaves after the quick
    image (streamed) or when its timeout passes (not streamed, APITimeoutError): the
    service aborts the slow Bedrock call while Bedrock is still working on it. (What the
    client gave up on is its loss: the quick image was billed and not waited for.)"""
    fresh.emulator.faults.set(SD35, kind="latency", latency_s=8.0, times=1)
    delivered = 0
    if stream:
        events = sdk(fresh).images.generate(
            model=SD35, prompt="a fox", n=2, size=SD_SIZE, stream=True
        )  # fmt: skip
        with events:
            for event in events:
                if event.type == "image_generation.completed":
                    delivered += 1
                    break
    else:
        with pytest.raises(openai.APITimeoutError):
            sdk(fresh, timeout_s=1.0).images.generate(model=SD35, prompt="a fox", n=2,
                                                      size=SD_SIZE)  # fmt: skip
    wait_until(lambda: service_gauge(fresh, "imagegen_bedrock_calls_in_flight") == 0)
    slow = [c for c in fresh.emulator.calls.snapshot() if c.finished_at is None]
    assert len(slow) == 1, "the service gave up the slow call before Bedrock answered it"
    assert delivered == int(stream) and billed_images(fresh.emulator) == 1
    with emulator_down(fresh):  # cuts off the slow call's leftover work at "Bedrock"
        pass
    assert_recovers(fresh)


# ----------------------------------------------------------------------------- /v1/models


def test_models_never_wait_behind_generations(fresh: LocalStack) -> None:
    """A new service process (its model catalog cache is cold), 20 generations at Bedrock
    for 3 s each: GET /v1/models is answered, from Bedrock's own listing, while all 20 are
    still in flight (issue 13: it used to share their thread pool and took 9.2 s)."""
    restart_service(fresh)
    fresh.emulator.faults.set(NOVA, kind="latency", latency_s=3.0)
    body = {"model": NOVA, "prompt": "a fox", "size": SIZE, "response_format": "b64_json"}
    url = f"{fresh.base_url}/images/generations"
    finished = threading.Event()

    def generate() -> int:
        status = httpx.post(url, json=body, timeout=60).status_code
        finished.set()
        return status

    with ThreadPoolExecutor(20) as pool:
        generations: list[Future[int]] = [pool.submit(generate) for _ in range(20)]
        wait_until(lambda: fresh.emulator.in_flight == 20)
        models = httpx.get(f"{fresh.base_url}/models", timeout=60)
        in_flight_after = fresh.emulator.in_flight
        any_finished = finished.is_set()
    assert models.status_code == 200
    assert not any_finished and in_flight_after == 20, [g.result() for g in generations]
    entries = models.json()["data"]
    assert entries and all(entry["lifecycle"] != "UNKNOWN" for entry in entries)  # not fallback
    assert [g.result() for g in generations] == [200] * 20
