"""service/invoke_model.py sends what aiobotocore's `invoke_model` sends and fails as it fails.

Both paths call one recording HTTP server on loopback, which answers from a script: the
requests are compared field by field (everything but the time and the signature made from
it), and errors and retries must come out the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError, EndpointConnectionError

from service.invoke_model import InvokeModel

MODEL = "us.stability.stable-image-core-v1:1"
BODY = b'{"prompt": "a fox"}'
OPTIONS = {"trace": "ENABLED", "guardrailIdentifier": "gr-1", "guardrailVersion": "2"}
# Set per request or per attempt, so never equal between two calls.
VOLATILE = {"x-amz-date", "authorization", "amz-sdk-invocation-id", "amz-sdk-request"}


@dataclass
class Recorder:
    """What the server received, and the answers it gives next (then a plain 200)."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)


def handler_for(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            status, headers, answer = (
                recorder.answers.pop(0)
                if recorder.answers
                else (200, {"Content-Type": "application/json"}, b'{"images": ["AAAA"]}')
            )
            self.send_response(status)
            for name, value in {"x-amzn-RequestId": f"req-{len(recorder.requests)}"}.items():
                self.send_header(name, value)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    recorded = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(recorded))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorded, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.asynccontextmanager
async def client_for(url: str, attempts: int = 1, **config: Any) -> AsyncIterator[Any]:
    retries = {"mode": "standard", "total_max_attempts": attempts}
    context = get_session().create_client(
        "bedrock-runtime",
        region_name="us-west-2",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        aws_session_token="token",
        config=AioConfig(retries=retries, user_agent="bedrock-images/test", **config),
    )
    async with context as client:
        yield client


def error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"message": message}).encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, body


def comparable(request: dict[str, Any]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in request["headers"].items() if k.lower() not in VOLATILE}
    return {"path": request["path"], "headers": headers, "body": request["body"]}


def signed_headers(request: dict[str, Any]) -> str:
    authorization = next(v for k, v in request["headers"].items() if k.lower() == "authorization")
    return str(authorization.split("SignedHeaders=")[1].split(",")[0])


async def both_ways(url: str, options: dict[str, str], attempts: int = 1) -> list[Any]:
    """[aiobotocore's outcome, InvokeModel's outcome]: (body, request id) or the exception."""
    outcomes: list[Any] = []
    async with client_for(url, attempts) as client:
        try:
            response = await client.invoke_model(
                modelId=MODEL, body=BODY, contentType="application/json",
                accept="application/json", **options,
            )  # fmt: skip
            async with response["body"] as stream:
                outcomes.append((await stream.read(), response["ResponseMetadata"]["RequestId"]))
        except ClientError as exc:
            outcomes.append(exc)
        try:
            answer = await InvokeModel(client)(MODEL, BODY, options)
            outcomes.append((answer.body, answer.request_id))
        except ClientError as exc:
            outcomes.append(exc)
    return outcomes


@pytest.mark.parametrize("options", [{}, OPTIONS], ids=["plain", "bedrock_options"])
def test_sends_the_request_aiobotocore_sends(
    recorder: tuple[Recorder, str], options: dict[str, str]
) -> None:
    recorded, url = recorder
    theirs, ours = asyncio.run(both_ways(url, options))
    assert ours[0] == theirs[0] == b'{"images": ["AAAA"]}'
    assert (theirs[1], ours[1]) == ("req-1", "req-2")
    aiobotocore_request, our_request = recorded.requests
    assert comparable(our_request) == comparable(aiobotocore_request)
    assert signed_headers(our_request) == signed_headers(aiobotocore_request)
    assert our_request["path"] == "/model/us.stability.stable-image-core-v1%3A1/invoke"
    if options:
        assert our_request["headers"]["X-Amzn-Bedrock-GuardrailIdentifier"] == "gr-1"


def test_an_error_is_the_same_modelled_exception(recorder: tuple[Recorder, str]) -> None:
    recorded, url = recorder
    refusal = error(400, "ValidationException", "Malformed input request: bad width")
    recorded.answers += [refusal, refusal]
    theirs, ours = asyncio.run(both_ways(url, {}))
    assert type(theirs) is type(ours) and type(ours).__name__ == "ValidationException"
    assert theirs.response["Error"] == ours.response["Error"]
    assert ours.response["ResponseMetadata"]["RequestId"] == "req-2"


def test_throttling_is_retried_as_botocore_retries(recorder: tuple[Recorder, str]) -> None:
    recorded, url = recorder
    throttled = error(429, "ThrottlingException", "Too many requests")
    # Throttled once each: both paths retry and succeed. Then twice each, with two attempts
    # allowed: both give up with the throttling error.
    recorded.answers += [throttled, (200, {}, b"{}")] * 2
    theirs, ours = asyncio.run(both_ways(url, {}, attempts=2))
    assert ours[0] == theirs[0] == b"{}"
    assert len(recorded.requests) == 4
    recorded.answers += [throttled] * 4
    theirs, ours = asyncio.run(both_ways(url, {}, attempts=2))
    assert type(ours).__name__ == type(theirs).__name__ == "ThrottlingException"
    assert ours.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(recorded.requests) == 8


def test_an_unreachable_endpoint_is_botocores_connection_error() -> None:
    async def call() -> None:
        async with client_for("http://127.0.0.1:9", attempts=1) as client:
            await InvokeModel(client)(MODEL, BODY, {})

    with pytest.raises(EndpointConnectionError):
        asyncio.run(call())


def test_a_client_that_does_not_sign_with_sigv4_takes_aiobotocores_path(
    recorder: tuple[Recorder, str],
) -> None:
    recorded, url = recorder

    async def call() -> bytes:
        async with client_for(url, signature_version=botocore.UNSIGNED) as client:
            return (await InvokeModel(client)(MODEL, BODY, {})).body

    assert asyncio.run(call()) == b'{"images": ["AAAA"]}'
    assert "Authorization" not in recorded.requests[0]["headers"]
