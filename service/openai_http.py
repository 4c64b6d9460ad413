"""The OpenAI wire format: JSON body -> `ImageGenerationRequest`, events -> JSON or SSE bytes.

Pure conversions, no I/O: the servicer decides when bytes are sent. Unknown top-level JSON
fields are provider-specific extras and travel in `extra_params`; the X-Amzn-Bedrock-*
headers (lower-cased gRPC metadata after Envoy) fill `bedrock`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson
import pybase64

from imagegen.v1 import images_pb2 as pb
from service.catalog import ModelEntry
from service.errors import ApiError, invalid_param
from service.pipeline import STORAGE_NOTICE, ImageEvent, PartialImageEvent, Plan
from service.usage import Usage
from service.validation import MAX_JSON_DEPTH, check_json_tree

JSON = "application/json"
SSE = "text/event-stream"
KEEPALIVE = b": keepalive\n\n"
CHUNK_BYTES = 1 << 20  # Envoy forwards each message as one chunk; keep them modest

# OpenAI request fields and the JSON type each must have.
_FIELDS: Mapping[str, type] = {
    "prompt": str,
    "model": str,
    "n": int,
    "size": str,
    "quality": str,
    "style": str,
    "response_format": str,
    "output_format": str,
    "output_compression": int,
    "stream": bool,
    "partial_images": int,
    "background": str,
    "moderation": str,
    "user": str,
    "safety_identifier": str,
}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean"}
# Newer OpenAI-only options (animated and SVG output) that no Bedrock image model has.
OPENAI_ONLY = ("complexity", "frame_count", "frame_duration_ms", "svg")

# gRPC metadata key (Envoy lower-cases header names) -> BedrockOptions field.
BEDROCK_HEADERS: Mapping[str, str] = {
    "x-amzn-bedrock-guardrailidentifier": "guardrail_identifier",
    "x-amzn-bedrock-guardrailversion": "guardrail_version",
    "x-amzn-bedrock-trace": "trace",
    "x-amzn-bedrock-service-tier": "service_tier",
    "x-amzn-bedrock-performanceconfig-latency": "performance_latency",
}


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object whose text is all valid (400 naming the field otherwise).

    Bytes that are not UTF-8 are kept as lone surrogates (surrogateescape), so the check
    that follows can name the field holding them instead of refusing the whole body.
    """
    text = body.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    try:
        data = json.loads(text or "null")
    except json.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON.", code="invalid_json") from None
    except RecursionError:
        raise ApiError(
            400,
            f"The request body nests objects or arrays more than {MAX_JSON_DEPTH} levels deep.",
            param="body",
            code="nesting_too_deep",
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    check_json_tree(data)
    return data


def parse_request(body: bytes, headers: Mapping[str, str]) -> pb.ImageGenerationRequest:
    """Build the typed request from the raw JSON body and the request headers."""
    data = parse_json_object(body)

    request = pb.ImageGenerationRequest()
    extras: dict[str, Any] = {}
    for key, value in data.items():
        if key in OPENAI_ONLY and value is not None:
            raise invalid_param(
                key,
                f"'{key}' is an OpenAI-only option that Bedrock image models do not support.",
                code="unsupported_parameter",
            )
        kind = _FIELDS.get(key)
        if kind is None:
            extras[key] = value
            continue
        if value is None:  # some clients send null for "not given"
            continue
        # JSON true is a Python int; 2.0 is an acceptable integer.
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise invalid_param(key, f"'{key}' must be {_TYPE_NAMES[kind]}.", code="invalid_type")
        if isinstance(value, int) and not -(2**31) <= value < 2**31:
            raise invalid_param(key, f"'{key}' is out of range.")
        setattr(request, key, value)
    if extras:
        request.extra_params.update(extras)
    for header, option in BEDROCK_HEADERS.items():
        if header in headers:
            setattr(request.bedrock, option, headers[header])
    return request


def _dumps(payload: Mapping[str, Any]) -> bytes:
    return orjson.dumps(payload)


def _image_pieces(before: Mapping[str, Any], b64: str, after: Mapping[str, Any]) -> list[bytes]:
    """The JSON object {**before, "b64_json": b64, **after} in three pieces, the image alone
    in the middle one.

    Base64 never needs JSON escaping, so its characters are copied, not scanned: a
    serializer spends milliseconds per megabyte on that string alone.
    """
    head = _dumps(before)[:-1] + b"," if before else b"{"
    tail = b"," + _dumps(after)[1:] if after else b"}"
    return [head + b'"b64_json":"', b64.encode("ascii"), b'"' + tail]


def _with_image(before: Mapping[str, Any], b64: str, after: Mapping[str, Any]) -> bytes:
    return b"".join(_image_pieces(before, b64, after))


def _chunks(pieces: list[bytes], size: int) -> Iterator[bytes]:
    """The concatenation of `pieces` in chunks of `size` bytes (the last one shorter): each
    byte is copied once, never the whole body (several megabytes per image) over and over."""
    chunk: list[memoryview] = []
    filled = 0
    for piece in pieces:
        view = memoryview(piece)
        while view:
            taken = view[: size - filled]
            chunk.append(taken)
            filled += len(taken)
            view = view[len(taken) :]
            if filled == size:
                yield b"".join(chunk)
                chunk, filled = [], 0
    if chunk:
        yield b"".join(chunk)


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "text_tokens": usage.input_tokens - usage.image_tokens,
            "image_tokens": usage.image_tokens,
        },
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _description(plan: Plan) -> dict[str, Any]:
    """Fields OpenAI adds next to the images, describing what was produced."""
    width, height = plan.size
    return {
        "background": plan.background,
        "output_format": plan.common.output_format,
        "quality": plan.common.quality or "auto",
        "size": f"{width}x{height}",
    }


def response_json(
    plan: Plan, images: list[ImageEvent], failure: ApiError | None = None
) -> Iterator[bytes]:
    """The non-streaming answer (images in request order), in chunks of at most CHUNK_BYTES.

    With `failure`, some of the request's Bedrock calls failed after others had produced
    (and been billed for) images: those images are still delivered, and `incomplete` says
    how many are missing and why.
    """
    rest: dict[str, Any] = {
        **_description(plan),
        "usage": usage_json(Usage(plan.input_tokens, len(images), plan.image_tokens)),
    }
    inline = [image.index for image in images if image.notice]
    if inline:
        rest["notice"] = {"code": "storage_unavailable", "message": STORAGE_NOTICE,
                          "images": inline}  # fmt: skip
    if failure is not None:
        rest["incomplete"] = {"requested": plan.common.n, "delivered": len(images),
                              **failure.body()}  # fmt: skip
    pieces = [b'{"created":', str(plan.created).encode(), b',"data":[']
    for number, image in enumerate(images):
        if number:
            pieces.append(b",")
        # An image asked for as a URL whose upload failed comes inline (its url is empty).
        if image.url:
            pieces.append(_dumps({"url": image.url}))
        else:
            pieces += _image_pieces({}, image.b64, {})
    pieces += [b"],", _dumps(rest)[1:]]
    return _chunks(pieces, CHUNK_BYTES)


def sse_event(name: str, payload: Mapping[str, Any] | bytes) -> bytes:
    data = payload if isinstance(payload, bytes) else _dumps(payload)
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


def sse_partial(plan: Plan, event: PartialImageEvent) -> bytes:
    name = f"{plan.kind}.partial_image"
    after = {
        "partial_image_index": event.partial_image_index,
        "image_index": event.index,
        "created_at": plan.created,
        **_description(plan),
    }
    b64 = pybase64.b64encode(event.data).decode("ascii")
    return sse_event(name, _with_image({"type": name}, b64, after))


def sse_completed(plan: Plan, event: ImageEvent) -> bytes:
    """One finished image; with response_format=url it carries the URL next to b64_json."""
    name = f"{plan.kind}.completed"
    after: dict[str, Any] = {
        "image_index": event.index,
        "created_at": plan.created,
        **_description(plan),
    }
    if event.url:
        after["url"] = event.url
    if event.notice:
        after["notice"] = {"code": "storage_unavailable", "message": event.notice}
    if event.usage is not None:
        after["usage"] = usage_json(event.usage)
    return sse_event(name, _with_image({"type": name}, event.b64, after))


def sse_error(error: ApiError) -> bytes:
    return sse_event("error", {"type": "error", **error.body()})


SSE_DONE = b"data: [DONE]\n\n"


def error_json(error: ApiError) -> bytes:
    return _dumps(error.body())


def _model_object(entry: ModelEntry) -> dict[str, Any]:
    model = {
        "id": entry.alias or entry.spec.model_id,
        "object": "model",
        "created": entry.created,
        "owned_by": entry.spec.provider,
        "lifecycle": entry.lifecycle,
        "legacy_at": _day(entry.legacy_at),
        "end_of_life_at": _day(entry.end_of_life_at),
        "region": entry.region,
    }
    if entry.alias:  # an OpenAI model name: the Bedrock model that generates for it
        model["alias_for"] = entry.spec.model_id
    return model


def _day(moment: datetime | None) -> str | None:
    return moment.date().isoformat() if moment else None


def model_json(entry: ModelEntry) -> bytes:
    return _dumps(_model_object(entry))


def model_list_json(entries: list[ModelEntry]) -> bytes:
    return _dumps({"object": "list", "data": [_model_object(entry) for entry in entries]})
