"""Slow and abusive clients cannot starve the others (issue 13).

1,024 stalled uploads used to use up Envoy's per-cluster request limit, so every other
request got 503 "overflow" and the stalled connections stayed open. Now the edge receives a
whole body before it takes a service slot, and closes a request that does not arrive within
REQUEST_TIMEOUT with an OpenAI 408 (set to a few seconds here so the test is quick).
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from gateway.envoy import Envoy
from stack.local import HOST, LocalStack, free_port
from tests.model_ids import NOVA

STALLED = 1_100
CLIENT_HOST = "127.0.0.2"
TIMEOUT_S = 3
SLACK_S = 20  # generous: 1,100 sockets on a shared 2-core machine


@pytest.fixture(scope="module")
def edge(stack: LocalStack) -> Iterator[Envoy]:
    overrides = {"REQUEST_TIMEOUT": f"{TIMEOUT_S}s", "REQUEST_HEADERS_TIMEOUT": f"{TIMEOUT_S}s"}
    with Envoy(free_port(), stack.ports.grpc, free_port(), HOST, overrides=overrides) as envoy:
        yield envoy


def open_stalled(envoy: Envoy, count: int, request: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        # From a loopback address of their own: 1,100 ephemeral ports taken on 127.0.0.1
        # could collide with the free ports other tests are about to bind.
        sock = socket.create_connection(
            (HOST, envoy.http_port), timeout=10, source_address=(CLIENT_HOST, 0)
        )
        sock.sendall(request)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def answers_until_closed(sockets: list[socket.socket], deadline_s: float) -> dict[int, bytes]:
    """What each socket received until the edge closed it (or the deadline passed)."""
    received = {sock.fileno(): b"" for sock in sockets}
    by_fd = {sock.fileno(): sock for sock in sockets}
    open_count = len(sockets)
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + deadline_s
        while open_count and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                sock = by_fd[key.fd]
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    received[key.fd] += data
                else:
                    selector.unregister(sock)
                    open_count -= 1
    for sock in sockets:
        sock.close()
    assert open_count == 0, f"{open_count} stalled connections still open after {deadline_s} s"
    return received


def assert_408(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    error = json.loads(body)["error"]
    assert (error["type"], error["code"]) == ("timeout_error", "request_timeout")


def test_stalled_uploads_do_not_starve_other_clients(edge: Envoy) -> None:
    upload = (
        b"POST /v1/images/generations HTTP/1.1\r\nHost: edge\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    started = time.monotonic()
    stalled = open_stalled(edge, STALLED, upload)
    client = openai.OpenAI(base_url=f"{edge.url}/v1", api_key="k", max_retries=0, timeout=30)
    # While all of them hang, other clients are served: images and the model list.
    for _ in range(3):
        result = client.images.generate(
            model=NOVA, prompt="a fox", size="320x320", response_format="b64_json"
        )
        assert result.data and result.data[0].b64_json
    assert httpx.get(f"{edge.url}/v1/models", timeout=10).status_code == 200
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    # ...and the edge answers each stalled upload with a 408 and closes it.
    answers = answers_until_closed(stalled, TIMEOUT_S + SLACK_S)
    for answer in answers.values():
        assert_408(answer)


def test_stalled_headers_are_closed_with_a_408(edge: Envoy) -> None:
    stalled = open_stalled(edge, 20, b"POST /v1/images/generations HTTP/1.1\r\nHost: ed")
    for answer in answers_until_closed(stalled, TIMEOUT_S + SLACK_S).values():
        assert_408(answer)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_long_generation_is_not_cut_by_the_request_timeout(edge: Envoy, stream: bool) -> None:
    """REQUEST_TIMEOUT bounds the upload only: an answer that takes longer still arrives."""
    body = {
        "model": NOVA,
        "prompt": f"a fox [[fault:latency={TIMEOUT_S + 2}]]",
        "size": "320x320",
        "response_format": "b64_json",
        "stream": stream,
    }
    response = httpx.post(f"{edge.url}/v1/images/generations", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert (b"image_generation.completed" in response.content) == stream
    assert stream or response.json()["data"]
