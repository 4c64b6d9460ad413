"""Large bodies do not hold up other requests (issue 13: one 64 MiB body stalled every other
request for 0.57 s, four at once for 3.2 s, because parsing ran on the event loop).

The big bodies are the slowest JSON there is to parse for their size: millions of tiny
values, seconds of `json.loads` each, which holds the GIL throughout (in a thread it still
stopped the event loop). While they are at the service, small requests (the model list and
a generation, with the openai SDK through Envoy) must all be answered before any big one is.
No clocks: only the order in which the answers arrive.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from urllib.parse import urlsplit

import openai

from stack.local import LocalStack
from tests.model_ids import NOVA

BIG_BODIES = 3
# About a second of json.loads each on a quiet machine (32 million small integers), refused
# afterwards with a 400 too_many_values.
BIG_BYTES = 32 * 1024 * 1024


def big_request(host: str, path: str) -> bytes:
    head = b'{"model": "%s", "prompt": "a fox", "values": [' % NOVA.encode()
    body = head + b"0," * ((BIG_BYTES - len(head)) // 2) + b"0]}"
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer.status, answer.read()


def test_small_requests_are_answered_while_large_bodies_are_parsed(
    stack: LocalStack, client: openai.OpenAI
) -> None:
    url = urlsplit(stack.base_url)
    assert url.hostname and url.port
    request = big_request(url.netloc, f"{url.path}/images/generations")
    order: list[str] = []
    answers: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def receive(sock: socket.socket) -> None:
        with sock:
            answer = read_answer(sock)
        with lock:
            order.append("big")
            answers.append(answer)

    readers = []
    for _ in range(BIG_BODIES):
        sock = socket.create_connection((url.hostname, url.port), timeout=120)
        sock.sendall(request)  # the whole body is with Envoy (or in the socket buffer)
        readers.append(threading.Thread(target=receive, args=(sock,)))
        readers[-1].start()

    models = client.models.list()
    with lock:
        order.append("small")
    image = client.images.generate(
        model=NOVA, prompt="a fox", size="320x320", response_format="b64_json"
    )
    with lock:
        order.append("small")

    for reader in readers:
        reader.join(180)
    assert any(model.id == NOVA for model in models.data)
    assert image.data and image.data[0].b64_json
    assert len(answers) == BIG_BODIES
    for status, body in answers:
        assert status == 400, body
        assert json.loads(body)["error"]["code"] == "too_many_values"
    assert order == ["small", "small"] + ["big"] * BIG_BODIES
