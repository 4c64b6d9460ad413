"""The OpenAI wire format of edits and variations -> `ImageEditRequest`.

Two bodies are accepted. `multipart/form-data` as the OpenAI SDKs send it: text fields as
strings, one file part per image (`image`, or `image[]` repeated) and `mask`. And JSON, as
many non-SDK clients send it: images as base64 or `data:` URLs (`image`, a list of them, or
OpenAI's `images: [{"image_url": ...}]`), `mask` likewise. Fields named like an
`EditOptions` member fill it (typed); any other unknown field is a provider extra that the
model's row validates. Responses are rendered by `openai_http` as for generations.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from imagegen.v1 import images_pb2 as pb
from service import multipart
from service.errors import ApiError, invalid_param
from service.openai_http import BEDROCK_HEADERS

# OpenAI request fields of edits and variations (the files aside).
REQUEST_FIELDS = (
    "prompt", "model", "n", "size", "quality", "response_format", "output_format",
    "output_compression", "stream", "partial_images", "background", "input_fidelity", "user",
    "safety_identifier",
)  # fmt: skip
OPTION_FIELDS = tuple(pb.EditOptions.DESCRIPTOR.fields_by_name)
IMAGE_FIELDS = ("image", "image[]")
_INTEGER_TYPES = (
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_INT64,
)  # fmt: skip
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def parse_edit_request(
    body: bytes,
    content_type: str,
    headers: Mapping[str, str],
    variation: bool,
    limits: multipart.Limits,
) -> pb.ImageEditRequest:
    request = pb.ImageEditRequest(variation=variation)
    if multipart.is_multipart(content_type):
        _from_form(request, multipart.parse(body, content_type, limits))
    else:
        _from_json(request, body)
    for header, option in BEDROCK_HEADERS.items():
        if header in headers:
            setattr(request.bedrock, option, headers[header])
    return request


def _from_form(request: pb.ImageEditRequest, parts: list[multipart.Part]) -> None:
    seen: set[str] = set()
    extras: dict[str, Any] = {}
    for part in parts:
        name = part.name
        if name in IMAGE_FIELDS:
            if not part.is_file:
                raise invalid_param(name, f"'{name}' must be a file part (the image bytes).")
            request.image.append(bytes(part.data))
            continue
        if name in seen:
            raise invalid_param(name, f"The form field '{name}' is sent more than once.")
        seen.add(name)
        if name == "mask":
            if not part.is_file:
                raise invalid_param(name, "'mask' must be a file part (a PNG with alpha).")
            request.mask = bytes(part.data)
        elif part.is_file:
            raise invalid_param(
                name,
                f"Unexpected file '{name}': files go in 'image' (or 'image[]') and 'mask'.",
                code="unknown_parameter",
            )
        elif name in REQUEST_FIELDS:
            _set(request, name, part.text(), from_form=True)
        elif name in OPTION_FIELDS:
            _set(request.options, name, part.text(), from_form=True)
        else:
            extras[name] = part.text()
    if extras:
        request.extra_params.update(extras)


def _from_json(request: pb.ImageEditRequest, body: bytes) -> None:
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(
            400,
            "The request body is neither multipart/form-data nor valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    _from_fields(request, data)


def request_from_fields(data: Mapping[str, Any], variation: bool) -> pb.ImageEditRequest:
    """The typed request from already-parsed JSON fields (the MCP tool's arguments); images
    may also be given as bytes, already fetched."""
    request = pb.ImageEditRequest(variation=variation)
    _from_fields(request, data)
    return request


def _from_fields(request: pb.ImageEditRequest, data: Mapping[str, Any]) -> None:
    extras: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if key in ("image", "images"):
            values = value if isinstance(value, list) else [value]
            for index, item in enumerate(values):
                where = key if len(values) == 1 else f"{key}[{index}]"
                request.image.append(_json_image(item, where))
        elif key == "mask":
            request.mask = _json_image(value, "mask")
        elif key in REQUEST_FIELDS:
            _set(request, key, value, from_form=False)
        elif key in OPTION_FIELDS:
            _set(request.options, key, value, from_form=False)
        else:
            extras[key] = value
    if extras:
        request.extra_params.update(extras)


def _json_image(value: Any, where: str) -> bytes:
    """An image given in JSON: base64, a data URL, or {"image_url": ...} / {"b64_json": ...}."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):
        value = value.get("image_url", value.get("b64_json"))
        if isinstance(value, dict):  # {"image_url": {"url": ...}}, as in chat messages
            value = value.get("url")
    if not isinstance(value, str) or not value:
        raise invalid_param(where, f"'{where}' must be a base64 image or a data: URL.")
    if value.startswith(("http://", "https://")):
        raise invalid_param(
            where,
            f"'{where}' is a URL; this service does not fetch images: send the bytes as "
            "base64, a data: URL, or a multipart file.",
        )
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        if not header.endswith(";base64"):
            raise invalid_param(where, f"'{where}' is a data: URL without ';base64'.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_param(where, f"'{where}' is not valid base64.") from None


def _set(message: Message, name: str, value: Any, from_form: bool) -> None:
    """Set one typed field, converting form strings; a bad value is a 400 naming it."""
    field = message.DESCRIPTOR.fields_by_name[name]
    try:
        if field.type == FieldDescriptor.TYPE_BOOL:
            value = _boolean(value) if from_form else value
            ok = isinstance(value, bool)
            kind = "a boolean"
        elif field.type in _INTEGER_TYPES:
            value = int(value) if from_form and value.strip() else value
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            ok = isinstance(value, int) and not isinstance(value, bool)
            kind = "an integer"
        elif field.type == FieldDescriptor.TYPE_DOUBLE:
            value = float(value) if from_form else value
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            kind = "a number"
        else:
            ok = isinstance(value, str)
            kind = "a string"
    except ValueError:
        ok, kind = False, {FieldDescriptor.TYPE_DOUBLE: "a number"}.get(field.type, "an integer")
    if not ok:
        raise invalid_param(name, f"'{name}' must be {kind}.", code="invalid_type")
    try:
        setattr(message, name, value)
    except ValueError:  # out of the protobuf type's range
        raise invalid_param(name, f"'{name}' is out of range.") from None


def _boolean(value: str) -> bool | str:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return value
