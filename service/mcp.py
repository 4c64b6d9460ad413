"""MCP (Model Context Protocol) server offering the tools `openai_image_generation` and
`openai_image_edit`.

Streamable HTTP transport, handshake era (protocol revisions 2024-11-05 to 2025-11-25),
stateless: every POST to /mcp carries one JSON-RPC message and gets a JSON answer; there is
no server-initiated stream, so GET and DELETE are 405. The tool takes the OpenAI Images API
parameters, goes through the same conversion as the HTTP face and runs the one pipeline.
The edit tool takes its images as base64 or data URLs, or as URLs of this service's own
bucket (an image it made earlier), which are read with boto3 from that bucket and nothing
else: a URL of any other host is refused, never fetched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from imagegen.v1 import images_pb2 as pb
from service import __version__
from service.errors import ApiError, invalid_param
from service.interceptors import record_error
from service.models import aliases
from service.models.registry import all_edit_models, all_models
from service.multipart import Limits
from service.openai_edits import request_from_fields
from service.parse_pool import BodyParser, generation_request
from service.pipeline import MAX_EDIT_IMAGES, STORAGE_NOTICE, ImageEvent, Plan
from service.storage import (
    CONTENT_TYPES,
    StorageUnavailable,
    StoredImageMissing,
    StoredImageTooLarge,
)
from service.validation import MAX_JSON_DEPTH, check_json_tree

TOOL_NAME = "openai_image_generation"
EDIT_TOOL_NAME = "openai_image_edit"
TOOL_NAMES = (TOOL_NAME, EDIT_TOOL_NAME)
# An image read from the bucket is bounded like one uploaded as a multipart file.
MAX_FETCH_BYTES = Limits().max_file_bytes
PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
SERVER_INFO = {"name": "bedrock-images", "version": __version__}

# JSON-RPC error codes.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
# The output options both tools share, as in OpenAI's generations and edits.
_OUTPUT_PROPERTIES: dict[str, Any] = {
    "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
    "output_compression": {"type": "integer", "minimum": 1, "maximum": 100},
    "response_format": {"type": "string", "enum": ["b64_json", "url"], "default": "b64_json"},
}

# Runs one request through the pipeline: its plan, the images in request order, and the
# failure that stopped the rest, if any.
Generate = Callable[
    [pb.ImageGenerationRequest | pb.ImageEditRequest],
    Awaitable[tuple[Plan, list[ImageEvent], ApiError | None]],
]


class OwnBucket(Protocol):
    """The service's image bucket, as the edit tool reads it (`storage.ImageStore`)."""

    def own_key(self, url: str) -> str | None: ...

    async def get(self, key: str, max_bytes: int) -> bytes: ...


@dataclass(frozen=True)
class McpReply:
    status: int
    body: bytes = b""
    content_type: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


def tool_definition() -> dict[str, Any]:
    models = sorted(spec.model_id for _, spec in all_models())
    models += [name for name, alias in aliases.active().items() if "generations" in alias.targets]
    return {
        "name": TOOL_NAME,
        "title": "Generate images with AWS Bedrock",
        "description": (
            "Generate images from a text prompt with an AWS Bedrock image model (Amazon Nova "
            "Canvas, Titan Image Generator, Stability AI), with the parameters of OpenAI's "
            "Images API. Returns the images (or their URLs with response_format 'url')."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "description": "What to draw."},
                "model": {
                    "type": "string",
                    "enum": models,
                    "description": "Bedrock model id, or an OpenAI model name that "
                    "the service maps to one (MODEL_ALIASES).",
                },
                "n": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "size": {"type": "string", "description": "WIDTHxHEIGHT or 'auto'."},
                "quality": {
                    "type": "string",
                    "description": "auto, standard, low, medium, high, hd (model-specific).",
                },
                "style": {"type": "string", "description": "Nova Canvas style preset."},
                **_OUTPUT_PROPERTIES,
                "extra_params": {
                    "type": "object",
                    "description": 'Provider-specific parameters, e.g. {"negative_prompt": '
                    '"blurry"} for Stability or {"textToImageParams": {"negativeText": '
                    '"blurry"}} for Nova Canvas.',
                },
            },
            "required": ["prompt", "model"],
            "additionalProperties": False,
        },
    }


def edit_tool_definition() -> dict[str, Any]:
    models = sorted(
        f"us.{spec.model_id}" if spec.profile_only else spec.model_id
        for _, spec in all_edit_models()
    )
    models += [name for name, alias in aliases.active().items() if "edits" in alias.targets]
    image = {
        "type": "string",
        "description": "Base64 PNG/JPEG/WebP, a data: URL, or the URL (or s3:// address) of "
        "an image this service made (response_format 'url'); no other URL is fetched.",
    }
    return {
        "name": EDIT_TOOL_NAME,
        "title": "Edit images with AWS Bedrock",
        "description": (
            "Edit an image with an AWS Bedrock model, with the parameters of OpenAI's image "
            "edits: inpaint (mask: alpha 0 marks the area to change), outpaint, search and "
            "replace or recolor, erase, remove background, upscale, control sketch/structure, "
            "style guide/transfer (Stability AI Image Services), SD3.5 Large image-to-image, "
            "Nova Canvas/Titan INPAINTING, OUTPAINTING, IMAGE_VARIATION, BACKGROUND_REMOVAL. "
            "Model options go in extra_params."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "image": {
                    "description": "The image to edit, or a list of them (style transfer: "
                    "content then style; Nova/Titan variations: up to 5).",
                    "anyOf": [
                        image,
                        {
                            "type": "array",
                            "items": image,
                            "minItems": 1,
                            "maxItems": MAX_EDIT_IMAGES,
                        },
                    ],
                },
                "mask": {
                    **image,
                    "description": "PNG the size of the first image whose fully transparent "
                    "pixels (alpha 0) mark the area to edit; base64, data: URL or a URL of "
                    "this service's bucket.",
                },
                "prompt": {"type": "string", "description": "What the edit should produce."},
                "model": {"type": "string", "enum": models, "description": "Bedrock model id."},
                "n": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "size": {
                    "type": "string",
                    "description": "WIDTHxHEIGHT or 'auto' (most edits keep the input's size).",
                },
                "quality": {"type": "string"},
                **_OUTPUT_PROPERTIES,
                "extra_params": {
                    "type": "object",
                    "description": 'Model options, e.g. {"search_prompt": "the cat"} for '
                    'search and replace, {"left": 256} for outpaint, {"grow_mask": 0}, '
                    '{"strength": 0.4} for SD3.5, {"task_type": "OUTPAINTING"} for Nova.',
                },
            },
            "required": ["image", "model"],
            "additionalProperties": False,
        },
    }


def _result(message_id: Any, result: Mapping[str, Any]) -> McpReply:
    return _json(200, {"jsonrpc": "2.0", "id": message_id, "result": result})


def _error(status: int, message_id: Any, code: int, message: str) -> McpReply:
    # Counted as the client's mistake, also when it travels in a 200 JSON-RPC answer.
    record_error(ApiError(400, message, code="invalid_request"))
    error = {"code": code, "message": message}
    return _json(status, {"jsonrpc": "2.0", "id": message_id, "error": error})


def _json(status: int, payload: Mapping[str, Any]) -> McpReply:
    return McpReply(status, json.dumps(payload).encode(), content_type="application/json")


@dataclass(frozen=True)
class ToolCall:
    """A tools/call, converted: the tool's typed request, or the error that makes the call a
    failed tool result, or (the edit tool with images in the bucket) the fields to finish."""

    name: str
    request: pb.ImageGenerationRequest | pb.ImageEditRequest | None = None
    fields: dict[str, Any] | None = None
    error: ApiError | None = None


@dataclass(frozen=True)
class Incoming:
    """One POSTed message as read: a JSON-RPC error to answer (HTTP status, code, text), a
    notification or response (no method: nothing to answer), or a call."""

    error: tuple[int, int, str] | None = None
    message_id: Any = None
    method: str | None = None
    params: Any = None  # a tools/call's are in `tool` instead
    tool: ToolCall | None = None


async def handle(
    http_method: str,
    body: bytes,
    headers: Mapping[str, str],
    generate: Generate,
    bucket: OwnBucket | None = None,
    parser: BodyParser | None = None,
) -> McpReply:
    """Answer one HTTP request to the MCP endpoint (keys and Origin were checked by the
    interceptor: DNS-rebinding protection is `interceptors.Gate`)."""
    if http_method != "POST":
        # Stateless server: no stream of server messages to GET, no session to DELETE.
        error = ApiError(405, f"{http_method} is not allowed on /mcp; use POST.",
                         code="method_not_allowed")  # fmt: skip
        return McpReply(405, json.dumps(error.body()).encode(), "application/json",
                        {"allow": "POST"})  # fmt: skip
    version = headers.get("mcp-protocol-version")
    if version and version not in PROTOCOL_VERSIONS:
        return _error(400, None, INVALID_REQUEST, f"Unsupported MCP-Protocol-Version {version}.")
    incoming = await (parser or BodyParser()).parse(read_message, body)
    if incoming.error is not None:
        return _error(incoming.error[0], incoming.message_id, *incoming.error[1:])
    if incoming.method is None:
        return McpReply(202)  # a notification or a response: accepted, nothing to answer
    if incoming.tool is not None:
        return _result(incoming.message_id, await _run_tool(incoming.tool, generate, bucket))
    return _dispatch(incoming.message_id, incoming.method, incoming.params)


def read_message(body: bytes) -> Incoming:
    """Parse and check one message, and convert a tool call's arguments. No I/O and no
    state: a parse worker runs it for large bodies (service/parse_pool.py)."""
    try:
        message = json.loads(body)
        check_json_tree(message)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Incoming((400, PARSE_ERROR, "The body is not valid JSON."))
    except RecursionError:
        return Incoming((400, PARSE_ERROR, f"The body nests more than {MAX_JSON_DEPTH} levels."))
    except ApiError as exc:
        return Incoming((400, INVALID_REQUEST, exc.message))
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return Incoming((400, INVALID_REQUEST, "Expected one JSON-RPC 2.0 message."))
    if "id" not in message or "method" not in message:
        return Incoming()
    message_id, method, params = message["id"], message["method"], message.get("params") or {}
    if method != "tools/call":
        return Incoming(message_id=message_id, method=method, params=params)
    name = params.get("name") if isinstance(params, dict) else None
    if name not in TOOL_NAMES:
        return Incoming((200, INVALID_PARAMS, "Unknown tool; this server offers "
                         f"{', '.join(repr(tool) for tool in TOOL_NAMES)}."),
                        message_id)  # fmt: skip
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, dict):
        return Incoming((200, INVALID_PARAMS, "Tool arguments must be an object."), message_id)
    return Incoming(message_id=message_id, method=method, tool=_tool_call(name, arguments))


def _tool_call(name: str, arguments: Mapping[str, Any]) -> ToolCall:
    try:
        fields = _fields(arguments)
        if name == TOOL_NAME:
            return ToolCall(name, request=generation_request(json.dumps(fields).encode(), {}))
        if any(_is_url(item) for key in ("image", "mask") for item in _listed(fields.get(key))):
            return ToolCall(name, fields=fields)  # the images are read from the bucket first
        return ToolCall(name, request=request_from_fields(fields, False))
    except ApiError as exc:
        return ToolCall(name, error=exc)


def _dispatch(message_id: Any, method: str, params: Any) -> McpReply:
    if method == "initialize":
        requested = params.get("protocolVersion") if isinstance(params, dict) else None
        version = requested if requested in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1]
        return _result(message_id, {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
        })  # fmt: skip
    if method == "ping":
        return _result(message_id, {})
    if method == "tools/list":
        return _result(message_id, {"tools": [tool_definition(), edit_tool_definition()]})
    return _error(200, message_id, METHOD_NOT_FOUND, f"Method not found: {method}")


async def _run_tool(tool: ToolCall, generate: Generate, bucket: OwnBucket | None) -> dict[str, Any]:
    """Run a converted tool call; failures are tool results with isError, as MCP asks."""
    try:
        if tool.error is not None:
            raise tool.error
        request = tool.request
        if request is None:
            fields = dict(tool.fields or {})
            for name in ("image", "mask"):
                if name in fields:
                    fields[name] = await _images(fields[name], name, bucket)
            # Decoding megabytes of base64 is CPU work: off the event loop.
            request = await asyncio.to_thread(request_from_fields, fields, False)
        plan, images, failure = await generate(request)
    except ApiError as exc:
        return _tool_error(exc)
    return _content("Edited" if tool.name == EDIT_TOOL_NAME else "Generated", plan, images,
                    failure)  # fmt: skip


def _fields(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The tool's arguments as one OpenAI body: named arguments win over extra_params."""
    extras = arguments.get("extra_params") or {}
    if not isinstance(extras, dict):
        raise invalid_param("extra_params", "'extra_params' must be an object.")
    named = {key: value for key, value in arguments.items() if key != "extra_params"}
    return {"response_format": "b64_json", **extras, **named, "stream": False}


async def _images(value: Any, name: str, bucket: OwnBucket | None) -> Any:
    """`value` with every URL of the service's bucket replaced by the image's bytes."""
    if isinstance(value, list):
        if len(value) == 1:
            return [await _image(value[0], name, bucket)]
        return [await _image(item, f"{name}[{index}]", bucket) for index, item in enumerate(value)]
    return await _image(value, name, bucket)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://", "s3://"))


async def _image(value: Any, where: str, bucket: OwnBucket | None) -> Any:
    if not _is_url(value):
        return value  # base64 or a data: URL, decoded (and checked) by the edit conversion
    key = bucket.own_key(value) if bucket else None
    if bucket is None or key is None:
        raise invalid_param(
            where,
            f"'{where}' is a URL that is not an image of this service's bucket; send the image "
            "as base64 or a data: URL, or a URL this service returned.",
            code="invalid_image_url",
        )
    try:
        return await bucket.get(key, MAX_FETCH_BYTES)
    except StoredImageMissing:
        raise invalid_param(
            where, f"'{where}' names no stored image (it was deleted or never existed)."
        ) from None
    except StoredImageTooLarge:
        raise ApiError(413, f"'{where}' is larger than {MAX_FETCH_BYTES} bytes.",
                       param=where, code="image_too_large") from None  # fmt: skip
    except StorageUnavailable:
        raise ApiError(503, f"'{where}' could not be read from storage; retry later.",
                       param=where, code="storage_unavailable") from None  # fmt: skip


def _content(
    verb: str, plan: Plan, images: list[ImageEvent], failure: ApiError | None
) -> dict[str, Any]:
    width, height = plan.size
    content: list[dict[str, Any]] = [{
        "type": "text",
        "text": f"{verb} {len(images)} image(s) with {plan.model.spec.model_id}, "
                f"{width}x{height} {plan.common.output_format}.",
    }]  # fmt: skip
    if failure is not None:
        content.append({"type": "text", "text": f"{plan.common.n - len(images)} image(s) "
                        f"could not be made: {failure.message}"})  # fmt: skip
    if any(image.notice for image in images):
        content.append({"type": "text", "text": STORAGE_NOTICE})
    for image in images:
        if image.url:
            content.append({"type": "text", "text": image.url})
        else:
            content.append({
                "type": "image",
                "data": image.b64,
                "mimeType": CONTENT_TYPES[image.output_format],
            })  # fmt: skip
    return {"content": content, "isError": False}


def _tool_error(exc: ApiError) -> dict[str, Any]:
    record_error(exc)  # a tool error inside a 200 JSON-RPC answer still counts as an error
    message = exc.message + (f" (parameter: {exc.param})" if exc.param else "")
    return {"content": [{"type": "text", "text": message}], "isError": True}
