"""The emulator over the wire, through real boto3 clients, as the service will use it."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from PIL import Image

from emulator.bedrock import BedrockEmulator
from tests.emulator.fault_table import ERROR_FAULTS

NOVA = "amazon.nova-canvas-v1:0"
TITAN = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"


@pytest.fixture(autouse=True)
def _no_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    # With it set, boto3 uses bearer auth, which it refuses over http://.
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)


@pytest.fixture(scope="module")
def emu() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(host="127.0.0.1", port=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _reset(emu: BedrockEmulator) -> Iterator[None]:
    yield
    emu.reset()


def client(url: str, service: str = "bedrock-runtime", attempts: int = 1, **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-west-2",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}, **config),
    )


@pytest.fixture(scope="module")
def runtime(emu: BedrockEmulator) -> Any:
    return client(emu.url)


@pytest.fixture(scope="module")
def retrying(emu: BedrockEmulator) -> Any:
    """A client with boto3's default standard-mode retries (3 attempts)."""
    return client(emu.url, attempts=3)


def nova_body(text: str = "a red fox", **config: Any) -> str:
    body: dict[str, Any] = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": text}}
    if config:
        body["imageGenerationConfig"] = config
    return json.dumps(body)


def invoke(runtime: Any, model_id: str, body: str | dict[str, Any], **kwargs: Any) -> Any:
    payload = body if isinstance(body, str) else json.dumps(body)
    response = runtime.invoke_model(modelId=model_id, body=payload, **kwargs)
    response["parsed"] = json.loads(response["body"].read())
    return response


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def error_of(runtime: Any, model_id: str, body: str | dict[str, Any], **kwargs: Any) -> Any:
    with pytest.raises(ClientError) as caught:
        invoke(runtime, model_id, body, **kwargs)
    return caught.value.response


def control(emu: BedrockEmulator, method: str, path: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{emu.url}/_emulator/{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


# --------------------------------------------------------------------------- success shapes


def test_nova_returns_distinct_pngs_of_the_requested_size(runtime: Any) -> None:
    response = invoke(runtime, NOVA, nova_body(numberOfImages=3, width=512, height=768))
    body = response["parsed"]
    assert response["contentType"] == "application/json"
    assert response["ResponseMetadata"]["RequestId"]
    assert body.get("error") is None
    assert len(body["images"]) == 3 and len(set(body["images"])) == 3
    for b64 in body["images"]:
        image = decode(b64)
        assert (image.format, image.size) == ("PNG", (512, 768))


def test_without_a_seed_repeated_calls_differ_and_with_one_they_repeat(runtime: Any) -> None:
    unseeded = {invoke(runtime, TITAN, nova_body(width=512, height=512))["parsed"]["images"][0]}
    unseeded.add(invoke(runtime, TITAN, nova_body(width=512, height=512))["parsed"]["images"][0])
    assert len(unseeded) == 2
    seeded = [invoke(runtime, TITAN, nova_body(seed=5))["parsed"]["images"][0] for _ in range(2)]
    assert seeded[0] == seeded[1]


@pytest.mark.parametrize(
    ("model_id", "ratio", "fmt", "size"),
    [
        (SD35, "16:9", "webp", (1344, 768)),
        ("stability.stable-image-core-v1:0", "21:9", "jpeg", (1536, 640)),
        (CORE, "2:3", "png", (832, 1216)),
        ("stability.stable-image-ultra-v1:0", "5:4", "jpeg", (1088, 896)),
        ("stability.stable-image-ultra-v1:1", "9:16", "png", (768, 1344)),
    ],
)
def test_stability_returns_one_image_in_the_requested_format(
    runtime: Any, model_id: str, ratio: str, fmt: str, size: tuple[int, int]
) -> None:
    body = invoke(
        runtime,
        model_id,
        {"prompt": "a lighthouse", "aspect_ratio": ratio} | {"output_format": fmt},
    )["parsed"]
    assert body["finish_reasons"] == [None]
    assert len(body["seeds"]) == 1 and isinstance(body["seeds"][0], int) and body["seeds"][0] > 0
    image = decode(body["images"][0])
    assert (image.format, image.size) == ({"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt], size)


def test_stability_echoes_a_given_seed(runtime: Any) -> None:
    assert invoke(runtime, CORE, {"prompt": "p", "seed": 77})["parsed"]["seeds"] == [77]


@pytest.mark.parametrize(
    "model_id",
    [
        f"arn:aws:bedrock:us-west-2::foundation-model/{NOVA}",
        f"us.{NOVA}",
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/apac.{NOVA}",
    ],
)
def test_arns_and_inference_profiles_reach_the_model(runtime: Any, model_id: str) -> None:
    assert len(invoke(runtime, model_id, nova_body(width=320, height=320))["parsed"]["images"]) == 1


def test_performance_headers_are_echoed(runtime: Any) -> None:
    response = invoke(runtime, CORE, {"prompt": "p"})
    assert response["performanceConfigLatency"] == "standard"
    assert "serviceTier" not in response
    response = invoke(
        runtime, CORE, {"prompt": "p"}, performanceConfigLatency="optimized", serviceTier="flex"
    )
    assert (response["performanceConfigLatency"], response["serviceTier"]) == ("optimized", "flex")


def test_guardrail_headers_and_body_block_are_accepted_together(runtime: Any) -> None:
    body = {"prompt": "p", "amazon-bedrock-guardrailConfig": {"tagSuffix": "abc"}}
    response = invoke(
        runtime, CORE, body, guardrailIdentifier="gr1", guardrailVersion="1", trace="ENABLED"
    )
    assert response["parsed"]["finish_reasons"] == [None]


# --------------------------------------------------------------------------- refusals


def test_unknown_model_is_resource_not_found(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ResourceNotFoundException) as caught:
        invoke(runtime, "amazon.nova-canvas-v9:0", nova_body())
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_validation_errors_are_not_retried(emu: BedrockEmulator, retrying: Any) -> None:
    with pytest.raises(retrying.exceptions.ValidationException) as caught:
        invoke(retrying, NOVA, nova_body(numberOfImages=6))
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "#/imageGenerationConfig/numberOfImages" in error["Error"]["Message"]
    assert len(emu.calls) == 1


@pytest.mark.parametrize(
    ("model_id", "body", "kwargs", "expected"),
    [
        (NOVA, "not json", {}, "Malformed input request"),
        (NOVA, '{"taskType": NaN}', {}, "Malformed input request"),
        (CORE, {"prompt": "p", "style_preset": "anime"}, {}, "extraneous key [style_preset]"),
        (CORE, {"prompt": "p", "output_format": "webp"}, {}, "#/output_format"),
        (NOVA, nova_body(), {"trace": "FOO"}, "at 'trace'"),
        (NOVA, nova_body(), {"guardrailIdentifier": "gr1"}, "Guardrail version is required"),
        (NOVA, nova_body(), {"guardrailIdentifier": "gr1", "guardrailVersion": "v1"}, "'v1'"),
        (NOVA, nova_body(), {"serviceTier": "gold"}, "at 'serviceTier'"),
        (NOVA, nova_body(), {"contentType": "text/plain"}, "Content type text/plain"),
        (
            CORE,
            {"prompt": "p", "amazon-bedrock-guardrailConfig": {}},
            {},
            "no guardrail identifier",
        ),
    ],
)
def test_invalid_requests_are_validation_exceptions(
    runtime: Any, model_id: str, body: str | dict[str, Any], kwargs: Any, expected: str
) -> None:
    error = error_of(runtime, model_id, body, **kwargs)
    assert error["Error"]["Code"] == "ValidationException"
    assert expected in error["Error"]["Message"]


def test_streaming_is_refused_for_image_models(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationException, match="ResponseStream"):
        runtime.invoke_model_with_response_stream(modelId=NOVA, body=nova_body())


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    ERROR_FAULTS,
)
def test_faults_use_bedrock_wire_errors(
    emu: BedrockEmulator, runtime: Any, kind: str, status: int, code: str
) -> None:
    emu.faults.set(kind=kind)
    with pytest.raises(getattr(runtime.exceptions, code)) as caught:
        invoke(runtime, NOVA, nova_body())
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["RequestId"]
    assert response["Error"]["Message"]
    assert (emu.calls[0].status, emu.calls[0].error_code) == (status, code)


def test_model_error_carries_its_extra_members(emu: BedrockEmulator, runtime: Any) -> None:
    emu.faults.set(kind="model_error")
    error = error_of(runtime, NOVA, nova_body())
    assert error["originalStatusCode"] == 500 and error["resourceName"] == NOVA


def test_model_faults_fire_only_for_valid_requests(emu: BedrockEmulator, runtime: Any) -> None:
    emu.faults.set(kind="model_timeout")
    assert error_of(runtime, NOVA, nova_body(""))["Error"]["Code"] == "ValidationException"


def test_a_first_attempt_fault_is_retried_by_boto3(emu: BedrockEmulator, retrying: Any) -> None:
    emu.faults.set(NOVA, kind="throttle", attempts=[1])
    assert len(invoke(retrying, NOVA, nova_body(width=320, height=320))["parsed"]["images"]) == 1
    assert [(c.attempt, c.status) for c in emu.calls] == [(1, 429), (2, 200)]


def test_times_counts_firings_across_retries(emu: BedrockEmulator, retrying: Any) -> None:
    emu.faults.set(kind="unavailable", times=2)
    invoke(retrying, CORE, {"prompt": "p"})
    assert [c.status for c in emu.calls] == [503, 503, 200]
    # The same header-driven attempt numbers also let a fault outlast the retries.
    emu.faults.set(kind="internal")
    assert error_of(retrying, CORE, {"prompt": "p"})["Error"]["Code"] == "InternalServerException"


def test_model_rules_match_that_model_and_its_profiles(emu: BedrockEmulator, runtime: Any) -> None:
    emu.faults.set(NOVA, kind="access_denied")
    assert invoke(runtime, CORE, {"prompt": "p"})["parsed"]["images"]
    assert error_of(runtime, f"us.{NOVA}", nova_body())["Error"]["Code"] == "AccessDeniedException"


def test_content_filter_is_a_validation_exception_for_nova(
    emu: BedrockEmulator, runtime: Any
) -> None:
    emu.faults.set(kind="filter")
    error = error_of(runtime, NOVA, nova_body())
    assert error["Error"] == {
        "Code": "ValidationException",
        "Message": "This request has been blocked by our content filters.",
    }
    emu.faults.set(kind="filter_output")
    assert (
        "blocked by our content filters"
        in error_of(runtime, TITAN, nova_body())["Error"]["Message"]
    )


@pytest.mark.parametrize(
    ("marker", "reason"),
    [
        ("[[fault:filter]]", "Filter reason: prompt"),
        ("[[fault:filter_output]]", "Filter reason: output image"),
        ("[[fault:inference_error]]", "Inference error"),
    ],
)
def test_stability_reports_filters_in_a_200(runtime: Any, marker: str, reason: str) -> None:
    response = invoke(runtime, SD35, {"prompt": f"a cat {marker}", "seed": 9})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["parsed"] == {"seeds": [9], "finish_reasons": [reason], "images": []}


def test_nova_inference_error_sets_the_error_field(runtime: Any) -> None:
    body = invoke(runtime, NOVA, nova_body("x [[fault:inference_error]]"))["parsed"]
    assert body["images"] == [] and body["error"]


def test_prompt_markers_fire_per_request(runtime: Any, retrying: Any) -> None:
    error = error_of(runtime, NOVA, nova_body("a fox [[fault:throttle]]"))
    assert error["Error"]["Code"] == "ThrottlingException"
    # Only the first attempt fails, so a retrying client gets through.
    assert invoke(retrying, CORE, {"prompt": "a fox [[fault:internal@1]]"})["parsed"]["images"]
    message = error_of(runtime, CORE, {"prompt": "[[fault:bogus]]"})["Error"]["Message"]
    assert "unknown fault kind 'bogus'" in message


def test_latency_keeps_a_call_in_flight(emu: BedrockEmulator, runtime: Any) -> None:
    seen: list[int] = []
    watcher = threading.Timer(0.15, lambda: seen.append(emu.in_flight))
    watcher.start()
    started = time.monotonic()
    invoke(runtime, CORE, {"prompt": "slow [[fault:latency=0.3]]"})
    elapsed = time.monotonic() - started
    watcher.join()
    assert seen == [1] and emu.in_flight == 0
    assert elapsed >= 0.3
    call = emu.calls[0]
    assert call.finished_at is not None and call.finished_at - call.started_at >= 0.3


def test_slow_body_arrives_in_pieces(emu: BedrockEmulator) -> None:
    emu.faults.set(kind="slow_body", latency_s=0.4)
    body = json.dumps({"prompt": "p"}).encode()
    # urllib would send a form Content-Type, which Bedrock (and the emulator) refuse.
    request = urllib.request.Request(
        f"{emu.url}/model/{CORE}/invoke", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        length = int(response.headers["Content-Length"])
        started = time.monotonic()
        first = response.read1()
        rest = response.read()
        elapsed = time.monotonic() - started
    assert 0 < len(first) < length and len(first) + len(rest) == length
    assert elapsed >= 0.25
    assert json.loads(first + rest)["finish_reasons"] == [None]


def test_global_latency_and_prompt_stop() -> None:
    with BedrockEmulator(port=0, latency_s=0.2) as emulator:
        started = time.monotonic()
        invoke(client(emulator.url), CORE, {"prompt": "p"})
        assert time.monotonic() - started >= 0.2

        emulator.faults.set(kind="latency", latency_s=30)
        slow = client(emulator.url, read_timeout=10)
        failures: list[BaseException] = []

        def call() -> None:
            try:
                invoke(slow, CORE, {"prompt": "p"})
            except Exception as exc:
                failures.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 5
        while emulator.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emulator.in_flight == 1
        started = time.monotonic()
        emulator.stop()
        assert time.monotonic() - started < 10  # it did not wait for the 30 s call
        caller.join(timeout=5)
        assert failures and not isinstance(failures[0], ReadTimeoutError)
        assert emulator.calls[1].status is None and emulator.in_flight == 0


# --------------------------------------------------------------------------- control endpoints


def test_control_endpoints(emu: BedrockEmulator, runtime: Any) -> None:
    rule = control(emu, "POST", "faults", {"kind": "throttle", "model_id": NOVA, "times": 1})
    assert rule["rule"]["kind"] == "throttle"
    assert [r["times"] for r in control(emu, "GET", "faults")["rules"]] == [1]
    assert error_of(runtime, NOVA, nova_body())["Error"]["Code"] == "ThrottlingException"
    invoke(runtime, NOVA, nova_body(width=320, height=320), serviceTier="priority")

    record = control(emu, "GET", "calls")
    assert record["in_flight"] == 0
    assert [(c["model_id"], c["status"]) for c in record["calls"]] == [(NOVA, 429), (NOVA, 200)]
    second = record["calls"][1]
    assert second["body"]["textToImageParams"] == {"text": "a red fox"}
    assert second["headers"]["x-amzn-bedrock-service-tier"] == "priority"
    assert second["finished_at"] >= second["started_at"]

    control(emu, "POST", "faults", {"kind": "internal"})
    assert control(emu, "DELETE", "faults") == {"rules": []}
    control(emu, "POST", "reset")
    assert control(emu, "GET", "calls")["calls"] == [] and len(emu.calls) == 0


def test_control_refuses_a_bad_rule(emu: BedrockEmulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        control(emu, "POST", "faults", {"kind": "explode"})
    assert caught.value.code == 400
    assert caught.value.headers["x-amzn-ErrorType"] == "ValidationException"
    assert "unknown fault kind" in json.loads(caught.value.read())["message"]


def test_calls_record_what_was_sent(emu: BedrockEmulator, runtime: Any) -> None:
    error_of(runtime, f"us.{NOVA}", "not json")
    call = emu.calls[0]
    assert (call.model_id, call.body, call.operation) == (f"us.{NOVA}", None, "InvokeModel")
    assert call.headers["amz-sdk-request"].startswith("attempt=1")
    assert "authorization" in call.headers


# --------------------------------------------------------------------------- model catalog


def test_list_foundation_models(emu: BedrockEmulator) -> None:
    bedrock = client(emu.url, service="bedrock")
    summaries = bedrock.list_foundation_models(byOutputModality="IMAGE")["modelSummaries"]
    assert len(summaries) == 8 + 13  # generation models and Stability's image services
    nova = next(s for s in summaries if s["modelId"] == NOVA)
    assert nova["modelArn"] == f"arn:aws:bedrock:us-west-2::foundation-model/{NOVA}"
    assert nova["modelLifecycle"]["status"] == "LEGACY"
    assert nova["modelLifecycle"]["endOfLifeTime"].isoformat().startswith("2026-09-30")
    assert nova["responseStreamingSupported"] is False
    statuses = {s["modelId"]: s["modelLifecycle"]["status"] for s in summaries}
    assert statuses["stability.stable-image-core-v1:0"] == "LEGACY"
    assert statuses[CORE] == "ACTIVE"

    stability = bedrock.list_foundation_models(byProvider="Stability AI")["modelSummaries"]
    assert {s["providerName"] for s in stability} == {"Stability AI"} and len(stability) == 5 + 13
    on_demand = bedrock.list_foundation_models(
        byProvider="Stability AI", byInferenceType="ON_DEMAND"
    )
    assert len(on_demand["modelSummaries"]) == 5  # the image services need a `us.` profile
    amazon = bedrock.list_foundation_models(byProvider="amazon", byInferenceType="ON_DEMAND")
    assert len(amazon["modelSummaries"]) == 3
    assert bedrock.list_foundation_models(byOutputModality="TEXT")["modelSummaries"] == []
    with pytest.raises(bedrock.exceptions.ValidationException):
        bedrock.list_foundation_models(byOutputModality="VIDEO")


def test_get_foundation_model(emu: BedrockEmulator) -> None:
    bedrock = client(emu.url, service="bedrock")
    details = bedrock.get_foundation_model(modelIdentifier=SD35)["modelDetails"]
    assert (details["modelId"], details["modelName"]) == (SD35, "SD3.5 Large")
    arn = f"arn:aws:bedrock:us-west-2::foundation-model/{CORE}"
    assert bedrock.get_foundation_model(modelIdentifier=arn)["modelDetails"]["modelArn"] == arn
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.get_foundation_model(modelIdentifier="amazon.nova-reel-v1:0")


# --------------------------------------------------------------------------- transport


def test_unknown_routes_are_404(emu: BedrockEmulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{emu.url}/model/{NOVA}/converse", timeout=5)
    assert caught.value.code == 404


def test_keep_alive_calls_are_not_delayed_by_nagle(emu: BedrockEmulator) -> None:
    # Nagle's algorithm plus the client's delayed ACK hold back every response whose headers
    # and body go out as separate writes by about 40 ms. The fastest of 30 calls shows it
    # whatever else the machine is doing: load makes calls slower, never that much faster.
    bedrock = client(emu.url, service="bedrock")
    bedrock.get_foundation_model(modelIdentifier=NOVA)  # warm up the connection
    fastest = float("inf")
    for _ in range(30):
        started = time.monotonic()
        bedrock.get_foundation_model(modelIdentifier=NOVA)
        fastest = min(fastest, time.monotonic() - started)
    assert fastest < 0.035
