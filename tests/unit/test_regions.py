"""Where each model is called (service/regions.py) and the BEDROCK_MODEL_REGIONS setting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.bedrock import explain_refusal, refusal_kind
from service.catalog import ModelEntry
from service.config import ConfigError, Settings
from service.models.registry import all_edit_models, all_models
from service.regions import RegionRouter
from tests.model_ids import CORE_1, NOVA, SD35, TITAN_V2, ULTRA_1

INPAINT = "stability.stable-image-inpaint-v1:0"
EMULATOR_ENV = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:1"}


@pytest.mark.parametrize("configured", ["us-east-1", "eu-west-1", "us-west-2"])
@pytest.mark.parametrize("model", [SD35, CORE_1, ULTRA_1])
def test_stability_text_to_image_is_called_in_us_west_2(configured: str, model: str) -> None:
    assert RegionRouter(configured, {}).region_for(model) == "us-west-2"


@pytest.mark.parametrize(
    ("configured", "expected"),
    [("us-east-1", "us-east-1"), ("us-east-2", "us-east-2"), ("us-west-2", "us-west-2"),
     ("eu-west-1", "us-east-1"), ("ap-northeast-1", "us-east-1")],
)  # fmt: skip
def test_us_profiles_are_called_from_a_us_region(configured: str, expected: str) -> None:
    assert RegionRouter(configured, {}).region_for(f"us.{INPAINT}") == expected


def test_amazon_models_stay_where_they_were_served() -> None:
    assert RegionRouter("eu-west-1", {}).region_for(NOVA) == "eu-west-1"
    assert RegionRouter("us-west-2", {}).region_for(NOVA) == "us-east-1"
    assert RegionRouter("us-west-2", {}).region_for(TITAN_V2) == "us-west-2"


def test_arns_and_other_geographies_name_their_region() -> None:
    router = RegionRouter("eu-central-1", {})
    arn = f"arn:aws:bedrock:ap-northeast-1::foundation-model/{NOVA}"
    assert router.region_for(arn) == "ap-northeast-1"
    profile_arn = f"arn:aws:bedrock:us-east-2:123456789012:inference-profile/us.{INPAINT}"
    assert router.region_for(profile_arn) == "us-east-2"
    assert router.region_for(f"eu.{NOVA}") == "eu-central-1"


def test_the_operator_override_wins_over_the_table() -> None:
    router = RegionRouter("us-east-1", {CORE_1: "us-east-1"})
    assert router.region_for(CORE_1) == "us-east-1"
    assert router.region_for(ULTRA_1) == "us-west-2"
    assert router.regions_in_use() == ["us-east-1", "us-west-2"]


def test_every_row_names_regions_and_living_replacements() -> None:
    rows = [spec for _, spec in all_models()] + [spec for _, spec in all_edit_models()]
    living = {spec.model_id for spec in rows if not spec.replaced_by}
    for spec in rows:
        assert spec.regions, f"{spec.model_id} says where it can be called"
        assert not spec.replaced_by or spec.replaced_by in living, spec.model_id


def test_bedrock_model_regions_setting_is_read_and_normalised() -> None:
    routes = f'{{"us.{INPAINT}": "us-east-2", "{SD35}": "us-east-1"}}'
    settings = Settings.from_env(EMULATOR_ENV | {"BEDROCK_MODEL_REGIONS": routes})
    assert dict(settings.bedrock_model_regions) == {INPAINT: "us-east-2", SD35: "us-east-1"}
    assert Settings.from_env(EMULATOR_ENV).bedrock_model_regions == {}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ('{"dall-e-3": "us-east-1"}', "dall-e-3"),
        (f'{{"{CORE_1}": "us-middle-7"}}', "us-middle-7"),
        (f'{{"{CORE_1}": 5}}', CORE_1),
        ('["us-east-1"]', "JSON object"),
        ("{nope", "not valid JSON"),
    ],
)
def test_bad_bedrock_model_regions_stop_start_up_naming_the_entry(raw: str, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(EMULATOR_ENV | {"BEDROCK_MODEL_REGIONS": raw})
    assert "BEDROCK_MODEL_REGIONS" in str(info.value)
    assert named in str(info.value)


EOL_TEXT = "This model version has reached the end of its life. Please refer to the AWS docs."


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("ResourceNotFoundException", EOL_TEXT, "retired"),
        ("ValidationException", EOL_TEXT, "retired"),
        ("ValidationException", "The provided model identifier is invalid.", "invalid_id"),
        ("ValidationException", "Operation not allowed", "not_allowed"),
        ("AccessDeniedException", "You don't have access to the model.", "access_denied"),
        ("ValidationException", "prompt: expected maxLength: 10000", None),
        ("ThrottlingException", "Too many requests", None),
    ],
)
def test_bedrock_refusals_are_recognised(code: str, message: str, kind: str | None) -> None:
    assert refusal_kind(code, message) == kind


def test_a_retired_model_is_a_404_with_its_date_and_a_living_model() -> None:
    spec = next(spec for _, spec in all_models() if spec.model_id == NOVA)
    entry = ModelEntry(spec, "us-east-1", 0, "EOL", None, datetime(2026, 9, 30, tzinfo=UTC))
    for kind in ("retired", "invalid_id"):  # an invalid id of a model listed as EOL too
        error = explain_refusal(kind, "x", NOVA, "us-east-1", entry)
        assert (error.status, error.code, error.param) == (404, "model_not_found", "model")
        assert "end of life on Bedrock on 2026-09-30" in error.message
        assert f"Use {CORE_1} instead (for edits: {INPAINT})" in error.message
    undated = explain_refusal("retired", EOL_TEXT, TITAN_V2, "us-east-1", None)
    assert "end of life" in undated.message and CORE_1 in undated.message


def test_other_refusals_say_what_to_do() -> None:
    invalid = explain_refusal("invalid_id", "The provided model identifier is invalid.", CORE_1,
                              "us-east-1", None)  # fmt: skip
    assert (invalid.status, invalid.code) == (404, "model_not_found")
    assert "us-east-1" in invalid.message and "BEDROCK_MODEL_REGIONS" in invalid.message
    for kind in ("not_allowed", "access_denied"):
        denied = explain_refusal(kind, "Operation not allowed", CORE_1, "us-west-2", None)
        assert (denied.status, denied.code, denied.error_type) == (
            403, "model_access_denied", "permission_error"
        )  # fmt: skip
    subscribe = explain_refusal("not_allowed", "", CORE_1, "r", None)
    assert "aws-marketplace:Subscribe" in subscribe.message
