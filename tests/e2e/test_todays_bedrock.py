"""The service against Bedrock as AWS answers today (EMULATOR_LIFECYCLE=aws-2026-12) with
AWS_REGION=us-east-1: living models work from their own regions, retired ones are 404s that
say so and name a living model. One stack for the module; the official openai SDK."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import openai
import pytest
from PIL import Image

from stack.local import LocalStack, Ports
from tests.model_ids import CORE_1, NOVA, SD35, TITAN_V1, TITAN_V2, ULTRA_1

REMOVE_BACKGROUND = "stability.stable-image-remove-background-v1:0"


@pytest.fixture(scope="module")
def todays() -> Iterator[LocalStack]:
    region = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    with LocalStack(
        ports=Ports.free(), with_s3=False, emulator_lifecycle="aws-2026-12", service_env=region
    ) as running:
        yield running


@pytest.fixture
def sdk(todays: LocalStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=todays.base_url, api_key="test", max_retries=0, timeout=60)


@pytest.mark.parametrize("model", [SD35, CORE_1, ULTRA_1])
def test_living_text_to_image_models_are_called_in_us_west_2(
    todays: LocalStack, sdk: openai.OpenAI, model: str
) -> None:
    answer = sdk.images.generate(model=model, prompt="a lighthouse at dawn", size="1024x1024")
    assert answer.data and answer.data[0].b64_json
    image = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json)))
    assert image.size == (1024, 1024)
    calls = httpx.get(f"{todays.emulator.url}/_emulator/calls", timeout=10).json()["calls"]
    assert [(c["model_id"], c["region"], c["status"]) for c in calls][-1] == (
        model, "us-west-2", 200
    )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "day"), [(NOVA, "2026-09-30"), (TITAN_V2, "2026-06-30"), (TITAN_V1, "")]
)
def test_retired_models_are_404s_that_say_end_of_life_and_name_a_living_model(
    sdk: openai.OpenAI, model: str, day: str
) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk.images.generate(model=model, prompt="a lighthouse")
    message = info.value.message
    assert "end of life" in message and day in message
    assert CORE_1 in message
    assert info.value.code == "model_not_found"


def test_an_image_service_is_called_through_its_us_profile(
    todays: LocalStack, sdk: openai.OpenAI
) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 40, 40)).save(picture, "PNG")
    answer = sdk.images.edit(
        model=REMOVE_BACKGROUND, image=("photo.png", picture.getvalue(), "image/png"), prompt="-"
    )
    assert answer.data and answer.data[0].b64_json
    calls = todays.emulator.calls
    assert (calls[-1].model_id, calls[-1].region) == (f"us.{REMOVE_BACKGROUND}", "us-east-1")


def test_models_api_lists_living_models_by_region_and_marks_retired_ones(
    todays: LocalStack,
) -> None:
    listed = httpx.get(f"{todays.base_url}/models", timeout=10).json()["data"]
    models = {m["id"]: m for m in listed if "alias_for" not in m}
    for model in (SD35, CORE_1, ULTRA_1):
        assert (models[model]["lifecycle"], models[model]["region"]) == ("ACTIVE", "us-west-2")
    nova = models[NOVA]
    assert (nova["lifecycle"], nova["region"]) == ("EOL", "us-east-1")
    assert (nova["legacy_at"], nova["end_of_life_at"]) == ("2026-03-30", "2026-09-30")
    assert models[TITAN_V2]["lifecycle"] == "EOL"
