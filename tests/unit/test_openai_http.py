"""JSON body and headers -> typed request: types, nulls, extras, OpenAI-only options."""

from __future__ import annotations

import json

import pytest

from service.errors import ApiError
from service.openai_http import parse_request


def parse(body: object, headers: dict[str, str] | None = None) -> object:
    return parse_request(json.dumps(body).encode(), headers or {})


def test_known_fields_extras_and_headers() -> None:
    request = parse_request(
        json.dumps({"prompt": "fox", "model": "m", "n": 2.0, "stream": True, "user": None,
                    "negative_prompt": "blurry", "imageGenerationConfig": {"seed": 3}}).encode(),
        {"x-amzn-bedrock-trace": "enabled", "authorization": "Bearer x"},
    )  # fmt: skip
    assert (request.prompt, request.model, request.n, request.stream) == ("fox", "m", 2, True)
    assert not request.user
    assert dict(request.extra_params)["negative_prompt"] == "blurry"
    assert request.bedrock.trace == "enabled"


@pytest.mark.parametrize(
    ("body", "param"),
    [({"prompt": 5}, "prompt"), ({"n": "2"}, "n"), ({"n": True}, "n"), ({"n": 1.5}, "n"),
     ({"stream": "yes"}, "stream"), ({"output_compression": 2**40}, "output_compression"),
     ({"svg": {"mode": "x"}}, "svg"), ({"frame_count": 4}, "frame_count")],
)  # fmt: skip
def test_bad_types_name_the_parameter(body: dict[str, object], param: str) -> None:
    with pytest.raises(ApiError) as info:
        parse({"prompt": "x", **body})
    assert (info.value.status, info.value.param) == (400, param)


@pytest.mark.parametrize("raw", [b"{nope", b"[1, 2]", b"", b"\xff\xfe"])
def test_body_must_be_a_json_object(raw: bytes) -> None:
    with pytest.raises(ApiError) as info:
        parse_request(raw, {})
    assert (info.value.status, info.value.code) == (400, "invalid_json")
