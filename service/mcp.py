"""MCP (Model Context Protocol) server offering the tool `openai_image_generation`.

Streamable HTTP transport, handshake era (protocol revisions 2024-11-05 to 2025-11-25),
stateless: every POST to /mcp carries one JSON-RPC message and gets a JSON answer; there is
no server-initiated stream, so GET and DELETE are 405. The tool takes the OpenAI Images API
parameters, goes through the same conversion as the HTTP face and runs the one pipeline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imagegen.v1 import images_pb2 as pb
from service import __version__
from service.errors import ApiError
from service.models import aliases
from service.models.registry import all_models
from service.openai_http import parse_request
from service.pipeline import STORAGE_NOTICE, ImageEvent, Plan
from service.storage import CONTENT_TYPES
from service.validation import MAX_JSON_DEPTH, check_json_tree

TOOL_NAME = "openai_image_generation"
PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
SERVER_INFO = {"name": "bedrock-images", "version": __version__}

# Bodies larger than this are parsed in a worker thread, off the event loop.
PARSE_INLINE_BYTES = 64 * 1024
# JSON-RPC error codes.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602

# Runs one request through the pipeline: its plan, the images in request order, and the
# failure that stopped the rest, if any.
Generate = Callable[
    [pb.ImageGenerationRequest], Awaitable[tuple[Plan, list[ImageEvent], ApiError | None]]
]


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
                "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
                "output_compression": {"type": "integer", "minimum": 1, "maximum": 100},
                "response_format": {
                    "type": "string",
                    "enum": ["b64_json", "url"],
                    "default": "b64_json",
                },
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


def _result(message_id: Any, result: Mapping[str, Any]) -> McpReply:
    return _json(200, {"jsonrpc": "2.0", "id": message_id, "result": result})


def _error(status: int, message_id: Any, code: int, message: str) -> McpReply:
    error = {"code": code, "message": message}
    return _json(status, {"jsonrpc": "2.0", "id": message_id, "error": error})


def _json(status: int, payload: Mapping[str, Any]) -> McpReply:
    return McpReply(status, json.dumps(payload).encode(), content_type="application/json")


async def handle(
    http_method: str,
    body: bytes,
    headers: Mapping[str, str],
    generate: Generate,
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
    try:
        if len(body) > PARSE_INLINE_BYTES:  # keep the event loop free
            message = await asyncio.to_thread(json.loads, body)
        else:
            message = json.loads(body)
        check_json_tree(message)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, None, PARSE_ERROR, "The body is not valid JSON.")
    except RecursionError:
        return _error(400, None, PARSE_ERROR, f"The body nests more than {MAX_JSON_DEPTH} levels.")
    except ApiError as exc:
        return _error(400, None, INVALID_REQUEST, exc.message)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return _error(400, None, INVALID_REQUEST, "Expected one JSON-RPC 2.0 message.")
    if "id" not in message or "method" not in message:
        return McpReply(202)  # a notification or a response: accepted, nothing to answer
    return await _dispatch(message["id"], message["method"], message.get("params") or {},
                           generate)  # fmt: skip


async def _dispatch(message_id: Any, method: str, params: Any, generate: Generate) -> McpReply:
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
        return _result(message_id, {"tools": [tool_definition()]})
    if method == "tools/call":
        if not isinstance(params, dict) or params.get("name") != TOOL_NAME:
            return _error(200, message_id, INVALID_PARAMS, f"Unknown tool; this server offers "
                          f"'{TOOL_NAME}'.")  # fmt: skip
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            return _error(200, message_id, INVALID_PARAMS, "Tool arguments must be an object.")
        return _result(message_id, await call_tool(arguments, generate))
    return _error(200, message_id, METHOD_NOT_FOUND, f"Method not found: {method}")


async def call_tool(arguments: Mapping[str, Any], generate: Generate) -> dict[str, Any]:
    """Run the tool; failures are tool results with isError, as MCP asks."""
    fields = {key: value for key, value in arguments.items() if key != "extra_params"}
    extras = arguments.get("extra_params") or {}
    if not isinstance(extras, dict):
        return _tool_error("'extra_params' must be an object.")
    fields = {"response_format": "b64_json", **extras, **fields, "stream": False}
    try:
        request = parse_request(json.dumps(fields).encode(), {})
        plan, images, failure = await generate(request)
    except ApiError as exc:
        return _tool_error(exc.message + (f" (parameter: {exc.param})" if exc.param else ""))
    width, height = plan.size
    content: list[dict[str, Any]] = [{
        "type": "text",
        "text": f"Generated {len(images)} image(s) with {plan.model.spec.model_id}, "
                f"{width}x{height} {plan.common.output_format}.",
    }]  # fmt: skip
    if failure is not None:
        content.append({"type": "text", "text": f"{plan.common.n - len(images)} image(s) "
                        f"could not be generated: {failure.message}"})  # fmt: skip
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


def _tool_error(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}
