"""The emulator's per-model rules, as pure functions: what Bedrock accepts and refuses."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from emulator.models import (
    MODELS,
    TITAN_SIZES,
    BedrockError,
    Generation,
    catalog_model,
    prompt_texts,
    resolve_model,
    strip_guardrail_config,
    validate_body,
    validate_invoke_headers,
)

NOVA = "amazon.nova-canvas-v1:0"
TITAN_V1 = "amazon.titan-image-generator-v1"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"
ULTRA = "stability.stable-image-ultra-v1:1"


def b64_image(fmt: str = "PNG", size: tuple[int, int] = (64, 64)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, fmt)
    return base64.b64encode(out.getvalue()).decode()


def canvas(text: str = "a red fox", task: str = "TEXT_IMAGE", **config: Any) -> dict[str, Any]:
    field = "textToImageParams" if task == "TEXT_IMAGE" else "colorGuidedGenerationParams"
    params: dict[str, Any] = {"text": text}
    if task == "COLOR_GUIDED_GENERATION":
        params["colors"] = ["#FF0000"]
    body: dict[str, Any] = {"taskType": task, field: params}
    if config:
        body["imageGenerationConfig"] = config
    return body


def with_params(body: dict[str, Any], **params: Any) -> dict[str, Any]:
    field = next(key for key in body if key.endswith("Params"))
    body[field].update(params)
    return body


def refused(model_id: str, body: object) -> str:
    with pytest.raises(BedrockError) as caught:
        validate_body(MODELS[model_id], body)
    assert (caught.value.status, caught.value.code) == (400, "ValidationException")
    return caught.value.message


# --------------------------------------------------------------------------- Nova and Titan


def test_nova_defaults() -> None:
    assert validate_body(MODELS[NOVA], canvas()) == Generation(
        "a red fox", 1024, 1024, 1, None, "png"
    )


def test_nova_accepts_the_documented_extremes() -> None:
    body = canvas(
        width=2048, height=2048, numberOfImages=5, quality="premium", cfgScale=10, seed=2147483646
    )
    with_params(body, negativeText="x" * 1024, style="PHOTOREALISM", text="t" * 1024)
    generation = validate_body(MODELS[NOVA], body)
    assert (generation.width, generation.height, generation.count, generation.seed) == (
        2048,
        2048,
        5,
        2147483646,
    )


def test_nova_condition_image_and_color_guidance() -> None:
    body = with_params(canvas(), conditionImage=b64_image("JPEG"), controlMode="SEGMENTATION")
    with_params(body, controlStrength=0.2)
    validate_body(MODELS[NOVA], body)
    colors = with_params(canvas(task="COLOR_GUIDED_GENERATION"), colors=["#000000"] * 10)
    with_params(colors, referenceImage=b64_image())
    validate_body(MODELS[NOVA], colors)


@pytest.mark.parametrize(
    ("model_id", "body", "expected"),
    [
        (NOVA, [], "#: expected type: JSONObject, found: JSONArray"),
        (NOVA, {"textToImageParams": {"text": "x"}}, "required key [taskType] not found"),
        (NOVA, canvas(task="FOO"), "#/taskType: FOO is not a valid enum value"),
        (NOVA, {"taskType": "TEXT_IMAGE"}, "required key [textToImageParams] not found"),
        (NOVA, {**canvas(), "seed": 1}, "#: extraneous key [seed] is not permitted"),
        (
            NOVA,
            {**canvas(), "colorGuidedGenerationParams": {"text": "x", "colors": ["#000000"]}},
            "extraneous key [colorGuidedGenerationParams]",
        ),
        (NOVA, with_params(canvas(), prompt="x"), "#/textToImageParams: extraneous key [prompt]"),
        (NOVA, canvas(n=2), "#/imageGenerationConfig: extraneous key [n]"),
        (NOVA, canvas(""), "#/textToImageParams/text: expected minLength: 1, actual: 0"),
        (NOVA, canvas("x" * 1025), "#/textToImageParams/text: expected maxLength: 1024"),
        (NOVA, with_params(canvas(), text=5), "text: expected type: String, found: Integer"),
        (NOVA, with_params(canvas(), negativeText=""), "#/textToImageParams/negativeText"),
        (NOVA, with_params(canvas(), style="ANIME"), "#/textToImageParams/style: ANIME"),
        (NOVA, canvas(width=1000, height=1008), "#/imageGenerationConfig/width: 1000 is not a"),
        (NOVA, canvas(width=304), "#/imageGenerationConfig/width: 304 is not between 320"),
        (NOVA, canvas(width=4112), "#/imageGenerationConfig/width: 4112 is not less or equal"),
        (NOVA, canvas(width=320, height=1344), "aspect ratio of 320x1344 is outside 1:4 to 4:1"),
        (NOVA, canvas(width=2048, height=2064), "2048x2064 has more than 4194304 pixels"),
        (NOVA, canvas(width=512.0), "width: expected type: Integer, found: BigDecimal"),
        (NOVA, canvas(numberOfImages=6), "numberOfImages: 6 is not less or equal to 5"),
        (NOVA, canvas(numberOfImages=0), "numberOfImages: 0 is not greater or equal to 1"),
        (NOVA, canvas(numberOfImages="2"), "numberOfImages: expected type: Integer, found: String"),
        (NOVA, canvas(numberOfImages=True), "expected type: Integer, found: Boolean"),
        (NOVA, canvas(numberOfImages=2.0), "numberOfImages: expected type: Integer"),
        (NOVA, canvas(seed=-1), "#/imageGenerationConfig/seed: -1 is not greater or equal to 0"),
        (NOVA, canvas(seed=2147483647), "seed: 2147483647 is not less or equal to 2147483646"),
        (NOVA, canvas(cfgScale=1.0), "#/imageGenerationConfig/cfgScale: 1.0 is not greater"),
        (NOVA, canvas(cfgScale=10.5), "cfgScale: 10.5 is not less or equal to 10.0"),
        (NOVA, canvas(cfgScale="6"), "cfgScale: expected type: Number, found: String"),
        (NOVA, canvas(quality="hd"), "#/imageGenerationConfig/quality: hd is not a valid enum"),
        (NOVA, with_params(canvas(), conditionImage="not base64!"), "conditionImage: is not a"),
        (NOVA, with_params(canvas(), conditionImage=b64_image("WEBP")), "format webp is not"),
        (NOVA, with_params(canvas(), controlStrength=1.5), "controlStrength: 1.5 is not less"),
        (NOVA, with_params(canvas(), controlMode="EDGES"), "controlMode: EDGES is not a valid"),
        (
            NOVA,
            {"taskType": "COLOR_GUIDED_GENERATION", "colorGuidedGenerationParams": {"text": "x"}},
            "#/colorGuidedGenerationParams: required key [colors] not found",
        ),
        (
            NOVA,
            with_params(canvas(task="COLOR_GUIDED_GENERATION"), colors=[]),
            "#/colorGuidedGenerationParams/colors: expected minimum item count: 1, found: 0",
        ),
        (
            NOVA,
            with_params(canvas(task="COLOR_GUIDED_GENERATION"), colors=["#000000"] * 11),
            "colors: expected maximum item count: 10, found: 11",
        ),
        (
            NOVA,
            with_params(canvas(task="COLOR_GUIDED_GENERATION"), colors=["red"]),
            "#/colorGuidedGenerationParams/colors/0: string [red] does not match pattern",
        ),
        (
            NOVA,
            with_params(canvas(task="COLOR_GUIDED_GENERATION"), style="MAXIMALISM"),
            "#/colorGuidedGenerationParams: extraneous key [style]",
        ),
        (TITAN_V1, canvas("x" * 513), "#/textToImageParams/text: expected maxLength: 512"),
        (TITAN_V1, with_params(canvas(), style="PHOTOREALISM"), "extraneous key [style]"),
        (TITAN_V1, with_params(canvas(), conditionImage=b64_image()), "key [conditionImage]"),
        (
            TITAN_V1,
            canvas(task="COLOR_GUIDED_GENERATION"),
            "taskType COLOR_GUIDED_GENERATION is not supported by model "
            "amazon.titan-image-generator-v1",
        ),
        (TITAN_V2, canvas(width=1024, height=1008), "1024x1008 is not a supported width x"),
        (TITAN_V2, canvas(width=2048, height=2048), "2048x2048 is not a supported"),
        (TITAN_V2, canvas(task="VIRTUAL_TRY_ON"), "VIRTUAL_TRY_ON is not supported by model"),
    ],
)
def test_canvas_refusals_name_the_field(model_id: str, body: object, expected: str) -> None:
    message = refused(model_id, body)
    assert expected in message
    assert message.startswith("Malformed input request: #") or "taskType" in message


@pytest.mark.parametrize(("width", "height"), sorted(TITAN_SIZES))
def test_titan_accepts_every_size_of_its_table(width: int, height: int) -> None:
    generation = validate_body(MODELS[TITAN_V1], canvas(width=width, height=height))
    assert (generation.width, generation.height) == (width, height)


def test_titan_v2_color_guidance_and_conditioning() -> None:
    validate_body(MODELS[TITAN_V2], canvas(task="COLOR_GUIDED_GENERATION"))
    validate_body(MODELS[TITAN_V2], with_params(canvas(), conditionImage=b64_image()))
    assert len(TITAN_SIZES) == 25


# --------------------------------------------------------------------------- Stability


def test_stability_defaults_and_sizes() -> None:
    assert validate_body(MODELS[CORE], {"prompt": "p"}) == Generation(
        "p", 1024, 1024, 1, None, "png"
    )
    body = {"prompt": "p", "aspect_ratio": "9:21", "output_format": "webp", "seed": 4294967294}
    assert validate_body(MODELS[SD35], body) == Generation("p", 640, 1536, 1, 4294967294, "webp")
    # Seed 0 means "random" for Stability.
    assert validate_body(MODELS[ULTRA], {"prompt": "p", "seed": 0}).seed is None


def test_sd35_image_to_image_takes_the_input_size() -> None:
    body = {
        "prompt": "p",
        "mode": "image-to-image",
        "image": b64_image("WEBP", (96, 80)),
        "strength": 0.5,
        "negative_prompt": "",
    }
    generation = validate_body(MODELS[SD35], body)
    assert (generation.width, generation.height) == (96, 80)


@pytest.mark.parametrize(
    ("model_id", "body", "expected"),
    [
        (CORE, {}, "#: required key [prompt] not found"),
        (CORE, {"prompt": ""}, "#/prompt: expected minLength: 1, actual: 0"),
        (SD35, {"prompt": "x" * 10_001}, "#/prompt: expected maxLength: 10000"),
        (ULTRA, {"prompt": 3}, "#/prompt: expected type: String"),
        (CORE, {"prompt": "p", "negative_prompt": "x" * 10_001}, "#/negative_prompt: expected"),
        (CORE, {"prompt": "p", "aspect_ratio": "4:3"}, "#/aspect_ratio: 4:3 is not a valid enum"),
        (CORE, {"prompt": "p", "output_format": "webp"}, "#/output_format: webp is not a valid"),
        (ULTRA, {"prompt": "p", "output_format": "webp"}, "#/output_format: webp is not a valid"),
        (SD35, {"prompt": "p", "output_format": "gif"}, "#/output_format: gif is not a valid"),
        (CORE, {"prompt": "p", "seed": 4294967295}, "#/seed: 4294967295 is not less or equal"),
        (CORE, {"prompt": "p", "seed": -1}, "#/seed: -1 is not greater or equal to 0"),
        (CORE, {"prompt": "p", "seed": 1.5}, "#/seed: expected type: Integer"),
        (CORE, {"prompt": "p", "mode": "text-to-image"}, "#: extraneous key [mode]"),
        (ULTRA, {"prompt": "p", "style_preset": "anime"}, "#: extraneous key [style_preset]"),
        (SD35, {"prompt": "p", "cfg_scale": 7}, "#: extraneous key [cfg_scale]"),
        (CORE, {"prompt": "p", "samples": 2}, "#: extraneous key [samples]"),
        (SD35, {"prompt": "p", "mode": "inpaint"}, "#/mode: inpaint is not a valid enum value"),
        (SD35, {"prompt": "p", "mode": "image-to-image"}, "required key [image] not found"),
        (
            SD35,
            {"prompt": "p", "mode": "image-to-image", "image": b64_image()},
            "required key [strength] not found",
        ),
        (SD35, {"prompt": "p", "strength": 0.5}, "#/strength: is only permitted with mode"),
        (
            SD35,
            {"prompt": "p", "mode": "image-to-image", "image": b64_image(), "strength": 0.5}
            | {"aspect_ratio": "1:1"},
            "#/aspect_ratio: is only permitted with mode text-to-image",
        ),
        (
            SD35,
            {"prompt": "p", "mode": "image-to-image", "image": b64_image(), "strength": 1.1},
            "#/strength: 1.1 is not less or equal to 1.0",
        ),
        (
            SD35,
            {"prompt": "p", "mode": "image-to-image", "strength": 0.5}
            | {"image": b64_image(size=(63, 200))},
            "#/image: 63x200 is smaller than 64 pixels",
        ),
    ],
)
def test_stability_refusals_name_the_field(model_id: str, body: object, expected: str) -> None:
    assert expected in refused(model_id, body)


# --------------------------------------------------------------------------- ids and headers


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        (NOVA, NOVA),
        ("stability.stable-image-core-v1:0", "stability.stable-image-core-v1:0"),
        (f"arn:aws:bedrock:us-west-2::foundation-model/{SD35}", SD35),
        (f"us.{NOVA}", NOVA),
        (f"eu.{TITAN_V2}", TITAN_V2),
        (f"apac.{ULTRA}", ULTRA),
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{NOVA}", NOVA),
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{NOVA}", None),
        (f"global.{NOVA}", None),
        (f"arn:aws:bedrock:us-east-1:123456789012:foundation-model/{NOVA}", None),
        ("amazon.nova-canvas-v2:0", None),
        ("stability.sd3-large-v1:0", None),
        ("", None),
    ],
)
def test_resolve_model(identifier: str, expected: str | None) -> None:
    model = resolve_model(identifier)
    assert (model.model_id if model else None) == expected


def test_catalog_model_takes_ids_and_foundation_arns_only() -> None:
    assert catalog_model(NOVA) is MODELS[NOVA]
    assert catalog_model(f"arn:aws:bedrock:eu-west-1::foundation-model/{NOVA}") is MODELS[NOVA]
    assert catalog_model(f"us.{NOVA}") is None


def test_catalog_names_fit_bedrock_branded_name() -> None:
    for model in MODELS.values():
        assert 1 <= len(model.name) <= 20 and 1 <= len(model.provider) <= 20


def test_valid_headers() -> None:
    headers = {
        "content-type": "application/json; charset=utf-8",
        "accept": "*/*",
        "x-amzn-bedrock-trace": "ENABLED_FULL",
        "x-amzn-bedrock-guardrailidentifier": "arn:aws:bedrock:us-east-1:123456789012:guardrail/g1",
        "x-amzn-bedrock-guardrailversion": "DRAFT",
        "x-amzn-bedrock-performanceconfig-latency": "optimized",
        "x-amzn-bedrock-service-tier": "reserved",
        "x-amzn-bedrock-request-metadata": '{"team": "images"}',
        "x-amzn-bedrock-projectidentifier": "default",
    }
    assert validate_invoke_headers(headers) is True
    assert validate_invoke_headers({}) is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-amzn-bedrock-trace": "enabled"}, "Value 'enabled' at 'trace' failed to satisfy"),
        ({"x-amzn-bedrock-performanceconfig-latency": "fast"}, "at 'performanceConfigLatency'"),
        ({"x-amzn-bedrock-service-tier": "gold"}, "'gold' at 'serviceTier'"),
        ({"x-amzn-bedrock-guardrailidentifier": "My-Guard"}, "at 'guardrailIdentifier'"),
        ({"x-amzn-bedrock-guardrailidentifier": "abc"}, "Guardrail version is required"),
        (
            {"x-amzn-bedrock-guardrailidentifier": "abc", "x-amzn-bedrock-guardrailversion": "v1"},
            "'v1' at 'guardrailVersion'",
        ),
        ({"x-amzn-bedrock-guardrailversion": "0"}, "at 'guardrailVersion'"),
        ({"x-amzn-bedrock-projectidentifier": "a b"}, "at 'projectIdentifier'"),
        ({"x-amzn-bedrock-request-metadata": "team=images"}, "requestMetadata must be a JSON"),
        ({"x-amzn-bedrock-request-metadata": '{"n": 1}'}, "JSON object of string values"),
        ({"content-type": "text/plain"}, "Content type text/plain is not supported"),
        ({"accept": "image/png"}, "Accept type image/png is not supported"),
    ],
)
def test_invalid_headers(headers: dict[str, str], expected: str) -> None:
    with pytest.raises(BedrockError) as caught:
        validate_invoke_headers(headers)
    assert caught.value.code == "ValidationException"
    assert expected in caught.value.message


def test_guardrail_body_block_needs_a_guardrail() -> None:
    body = {"prompt": "p", "amazon-bedrock-guardrailConfig": {"tagSuffix": "x"}}
    with pytest.raises(BedrockError, match="no guardrail identifier"):
        strip_guardrail_config(body, guardrail_enabled=False)
    assert strip_guardrail_config(body, guardrail_enabled=True) == {"prompt": "p"}


def test_prompt_texts_finds_the_text_of_every_family() -> None:
    assert prompt_texts(canvas("nova text")) == ["nova text"]
    assert prompt_texts({"prompt": "stability"}) == ["stability"]
    assert prompt_texts("not an object") == []
