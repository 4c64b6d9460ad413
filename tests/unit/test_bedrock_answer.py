"""Bedrock's JSON answers parsed with the images lifted out: always what orjson.loads gives."""

from __future__ import annotations

import base64
import json
import random

import orjson
import pytest

from service.bedrock import _PLACEHOLDER, LONG_STRING_BYTES, parse_answer

IMAGE = base64.b64encode(random.Random(7).randbytes(3 * LONG_STRING_BYTES)).decode()
SHORT = IMAGE[: LONG_STRING_BYTES // 2]

ANSWERS = [
    {"images": [IMAGE], "error": None},  # Nova Canvas, Titan
    {"seeds": [7], "finish_reasons": [None], "images": [IMAGE]},  # Stability
    {"images": [IMAGE, IMAGE[:-4], SHORT]},
    {"images": []},
    {"x": 'a\\"' + IMAGE + '"', "images": [IMAGE]},  # an escaped quote before an image
    {"x": "ends in a backslash \\", "images": [IMAGE]},
    {"note": IMAGE + "!", "images": [IMAGE]},  # long, but not base64
    {"note": "\u00e9\n" + IMAGE, "images": [IMAGE]},  # long, with escapes
    {IMAGE: "an image as a key"},
    {"images": [IMAGE], "n": _PLACEHOLDER + "0"},  # text that looks like a placeholder
    {"nested": {"deeper": [{"image": IMAGE}]}},
    [IMAGE],
    IMAGE,
    None,
]


@pytest.mark.parametrize("answer", ANSWERS, ids=range(len(ANSWERS)))
def test_same_as_orjson(answer: object) -> None:
    for raw in (
        orjson.dumps(answer),
        json.dumps(answer).encode(),
        json.dumps(answer, indent=2).encode(),
    ):
        assert parse_answer(raw) == orjson.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [b'{"images": ["' + IMAGE.encode() + b'"', b'{"images": ["' + IMAGE.encode() + b'"]', b""],
    ids=["unterminated string", "unterminated object", "empty"],
)
def test_malformed_answers_fail_as_orjson_fails(raw: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    with pytest.raises(orjson.JSONDecodeError):
        parse_answer(raw)
