"""The service's Prometheus metrics tell the truth: outcome and HTTP status of every answer,
through the real Envoy, and Bedrock work in flight until it really ends."""

from __future__ import annotations

import grpc
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from stack.local import LocalStack
from tests.model_ids import NOVA, SD35
from tests.polling import wait_until

GENERATE = "/imagegen.v1.ImageGeneration/Generate"
GENERATE_HTTP = "/imagegen.v1.ImageGeneration/GenerateHttp"


def scrape(stack: LocalStack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{stack.ports.metrics}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def rpcs(stack: LocalStack, outcome: str, status: int, model: str = NOVA) -> float:
    labels = {"method": GENERATE_HTTP, "model": model, "outcome": outcome, "status": str(status)}
    return scrape(stack).get(("imagegen_rpcs_total", frozenset(labels.items())), 0.0)


def in_flight(stack: LocalStack) -> float:
    return scrape(stack)[("imagegen_bedrock_calls_in_flight", frozenset())]


@pytest.mark.parametrize(
    ("prompt", "model", "error", "outcome", "status", "counted_model"),
    [
        # Rejected before the model is resolved: no model label.
        ("", NOVA, openai.BadRequestError, "client_error", 400, ""),
        ("a fox", "no-such-model", openai.NotFoundError, "client_error", 404, ""),
        ("a fox [[fault:throttle]]", NOVA, openai.RateLimitError, "rate_limited", 429, NOVA),
        ("a fox [[fault:internal]]", NOVA, openai.APIStatusError, "server_error", 502, NOVA),
    ],
)
def test_error_answers_are_counted_by_outcome_and_status(
    client: openai.OpenAI,
    stack: LocalStack,
    prompt: str,
    model: str,
    error: type[openai.APIStatusError],
    outcome: str,
    status: int,
    counted_model: str,
) -> None:
    before = rpcs(stack, outcome, status, counted_model)
    ok_before = rpcs(stack, "ok", 200, counted_model)
    with pytest.raises(error) as info:
        client.images.generate(model=model, prompt=prompt)
    assert info.value.status_code == status
    assert rpcs(stack, outcome, status, counted_model) == before + 1
    assert rpcs(stack, "ok", 200, counted_model) == ok_before


def test_success_is_ok_200(client: openai.OpenAI, stack: LocalStack) -> None:
    before = rpcs(stack, "ok", 200)
    client.images.generate(model=NOVA, prompt="a fox", size="320x320")
    assert rpcs(stack, "ok", 200) == before + 1


def test_in_band_stream_error_counts_as_the_error_with_status_200(stack: LocalStack) -> None:
    before = rpcs(stack, "rate_limited", 200, SD35)
    body = {"model": SD35, "prompt": "a fox [[fault:throttle]]", "stream": True}
    url = f"{stack.base_url}/images/generations"
    response = httpx.post(url, json=body, timeout=30)
    assert response.status_code == 200 and "event: error" in response.text
    assert rpcs(stack, "rate_limited", 200, SD35) == before + 1


def test_disconnect_is_cancelled_and_aborts_the_bedrock_call(stack: LocalStack) -> None:
    before = rpcs(stack, "cancelled", 499, SD35)
    assert in_flight(stack) == 0
    body = {"model": SD35, "prompt": "a fox [[fault:latency=3]]", "stream": True}
    with httpx.stream("POST", f"{stack.base_url}/images/generations", json=body, timeout=30) as r:
        chunks = r.iter_bytes()  # held: a dropped iterator would close the stream at once
        next(chunks)  # the first keepalive: the stream is under way
        wait_until(lambda: stack.emulator.in_flight == 1)
        assert in_flight(stack) == 1
    # The client is gone: the RPC ends as cancelled at once, and so does the InvokeModel
    # call (its HTTP request is aborted): the gauge drops while the emulator, which only
    # notices when it writes its answer seconds later, still holds the abandoned call.
    wait_until(lambda: rpcs(stack, "cancelled", 499, SD35) == before + 1)
    wait_until(lambda: in_flight(stack) == 0)
    assert stack.emulator.in_flight == 1
    wait_until(lambda: stack.emulator.in_flight == 0)


def test_typed_grpc_errors_are_counted_with_the_status_they_stand_for(stack: LocalStack) -> None:
    labels = {"method": GENERATE, "model": "", "outcome": "client_error", "status": "400"}
    key = ("imagegen_rpcs_total", frozenset(labels.items()))
    before = scrape(stack).get(key, 0.0)
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = pb_grpc.ImageGenerationStub(channel)
        with pytest.raises(grpc.RpcError):
            list(stub.Generate(pb.ImageGenerationRequest(model=NOVA, prompt="x", n=0), timeout=10))
    assert scrape(stack).get(key, 0.0) == before + 1
