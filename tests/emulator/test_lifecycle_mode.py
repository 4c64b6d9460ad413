"""EMULATOR_LIFECYCLE=aws-2026-12 answers as AWS does today; the default serves every model
of the product page while reporting the real lifecycle. Through real boto3 clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from emulator.bedrock import BedrockEmulator
from tests.model_ids import CORE_1, NOVA, SD35, TITAN_V1, TITAN_V2

INPAINT = "stability.stable-image-inpaint-v1:0"
CORE_BODY = json.dumps({"prompt": "a fox"})


@pytest.fixture(autouse=True)
def _no_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)


@pytest.fixture(scope="module")
def todays() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(port=0, lifecycle="aws-2026-12") as emulator:
        yield emulator


def client(emulator: BedrockEmulator, region: str, service: str = "bedrock-runtime") -> Any:
    return boto3.client(
        service, endpoint_url=emulator.url, region_name=region, aws_access_key_id="x",
        aws_secret_access_key="y", config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip


def refusal(emulator: BedrockEmulator, region: str, model: str) -> tuple[str, str]:
    runtime = client(emulator, region)
    with pytest.raises(runtime.exceptions.ClientError) as info:
        runtime.invoke_model(modelId=model, body=CORE_BODY)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def test_retired_models_are_refused_as_end_of_life(todays: BedrockEmulator) -> None:
    for model in (NOVA, TITAN_V1, TITAN_V2):
        code, message = refusal(todays, "us-east-1", model)
        assert code == "ResourceNotFoundException" and "end of its life" in message


def test_stability_text_to_image_answers_only_in_us_west_2_by_its_bare_id(
    todays: BedrockEmulator,
) -> None:
    answer = client(todays, "us-west-2").invoke_model(modelId=CORE_1, body=CORE_BODY)
    assert json.loads(answer["body"].read())["images"]
    invalid = ("ValidationException", "The provided model identifier is invalid.")
    assert refusal(todays, "us-east-1", CORE_1) == invalid
    assert refusal(todays, "us-west-2", f"us.{CORE_1}") == invalid
    assert refusal(todays, "us-east-1", INPAINT) == invalid  # image services: us. only
    assert refusal(todays, "eu-west-1", f"us.{INPAINT}") == invalid
    served = [(call.model_id, call.region) for call in todays.calls if call.status == 200]
    assert served == [(CORE_1, "us-west-2")]


def test_listings_are_per_region_with_lifecycle(todays: BedrockEmulator) -> None:
    def listed(region: str) -> dict[str, Any]:
        answer = client(todays, region, "bedrock").list_foundation_models()
        return {s["modelId"]: s["modelLifecycle"] for s in answer["modelSummaries"]}

    west, east = listed("us-west-2"), listed("us-east-1")
    assert {SD35, CORE_1, INPAINT} <= set(west) and NOVA not in west
    assert INPAINT in east and SD35 not in east and TITAN_V1 not in east
    assert east[NOVA]["status"] == "LEGACY"
    assert east[NOVA]["endOfLifeTime"].date().isoformat() == "2026-09-30"


def test_the_default_mode_serves_retired_models_and_reports_their_lifecycle() -> None:
    with BedrockEmulator(port=0) as emulator:
        runtime = client(emulator, "us-east-1")
        body = json.dumps({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a fox"}})
        assert json.loads(runtime.invoke_model(modelId=NOVA, body=body)["body"].read())["images"]
        summaries = client(emulator, "eu-west-1", "bedrock").list_foundation_models()
        lifecycle = {s["modelId"]: s["modelLifecycle"] for s in summaries["modelSummaries"]}
        assert lifecycle[TITAN_V2]["status"] == "LEGACY" and CORE_1 in lifecycle


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="EMULATOR_LIFECYCLE"):
        BedrockEmulator(lifecycle="aws-2024")
