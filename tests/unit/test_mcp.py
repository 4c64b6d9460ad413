"""The MCP endpoint's JSON-RPC handling, with a stand-in for the pipeline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from imagegen.v1 import images_pb2 as pb
from service import mcp
from service.errors import ApiError, invalid_param
from service.pipeline import ImageEvent, Plan


async def refuse(
    request: pb.ImageGenerationRequest | pb.ImageEditRequest,
) -> tuple[Plan, list[ImageEvent], None]:
    raise invalid_param("size", f"Invalid size {request.size!r}.")


def post(
    message: Any, generate: mcp.Generate = refuse, headers: dict[str, str] | None = None
) -> mcp.McpReply:
    body = json.dumps(message).encode()
    return asyncio.run(mcp.handle("POST", body, headers or {}, generate))


def rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}}


def answer(reply: mcp.McpReply) -> dict[str, Any]:
    assert reply.content_type == "application/json"
    body: dict[str, Any] = json.loads(reply.body)
    assert body["jsonrpc"] == "2.0"
    return body


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_no_server_stream_and_no_sessions(method: str) -> None:
    reply = asyncio.run(mcp.handle(method, b"", {}, refuse))
    assert (reply.status, reply.headers["allow"]) == (405, "POST")


@pytest.mark.parametrize("requested", ["2025-06-18", "2024-11-05", "1999-01-01"])
def test_initialize_negotiates_the_version(requested: str) -> None:
    result = answer(post(rpc("initialize", {"protocolVersion": requested})))["result"]
    expected = requested if requested in mcp.PROTOCOL_VERSIONS else mcp.PROTOCOL_VERSIONS[-1]
    assert result["protocolVersion"] == expected
    assert result["capabilities"] == {"tools": {"listChanged": False}}


def test_notifications_are_accepted_without_a_body() -> None:
    reply = post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert (reply.status, reply.body) == (202, b"")


def test_protocol_errors() -> None:
    bad_json = asyncio.run(mcp.handle("POST", b"{oops", {}, refuse))
    assert (bad_json.status, json.loads(bad_json.body)["error"]["code"]) == (400, mcp.PARSE_ERROR)
    batch = post([rpc("ping")])
    assert json.loads(batch.body)["error"]["code"] == mcp.INVALID_REQUEST
    unknown = answer(post(rpc("resources/list")))
    assert unknown["error"]["code"] == mcp.METHOD_NOT_FOUND
    assert unknown["id"] == 7
    wrong_tool = answer(post(rpc("tools/call", {"name": "dall_e", "arguments": {}})))
    assert wrong_tool["error"]["code"] == mcp.INVALID_PARAMS
    version = post(rpc("ping"), headers={"mcp-protocol-version": "2099-01-01"})
    assert version.status == 400


def test_tool_list_describes_the_parameters() -> None:
    [tool, edit] = answer(post(rpc("tools/list")))["result"]["tools"]
    assert (tool["name"], edit["name"]) == ("openai_image_generation", "openai_image_edit")
    assert edit["inputSchema"]["required"] == ["image", "model"]
    schema = tool["inputSchema"]
    assert schema["required"] == ["prompt", "model"]
    assert "amazon.nova-canvas-v1:0" in schema["properties"]["model"]["enum"]


def test_tool_failures_are_results_with_is_error() -> None:
    arguments = {"prompt": "fox", "model": "m", "size": "big"}
    call = rpc("tools/call", {"name": mcp.TOOL_NAME, "arguments": arguments})
    result = answer(post(call))["result"]
    assert result["isError"] is True
    assert "size" in result["content"][0]["text"]


def test_arguments_go_through_the_openai_conversion() -> None:
    seen: list[pb.ImageGenerationRequest | pb.ImageEditRequest] = []

    async def record(
        request: pb.ImageGenerationRequest | pb.ImageEditRequest,
    ) -> tuple[Plan, list[ImageEvent], None]:
        seen.append(request)
        raise ApiError(503, "stop here")

    arguments = {"prompt": "fox", "model": "m", "n": 2,
                 "extra_params": {"negative_prompt": "blurry"}}  # fmt: skip
    post(rpc("tools/call", {"name": mcp.TOOL_NAME, "arguments": arguments}), record)
    [request] = seen
    assert (request.prompt, request.n, request.response_format) == ("fox", 2, "b64_json")
    assert dict(request.extra_params) == {"negative_prompt": "blurry"}


class Bucket:
    """A stand-in bucket: one own URL, one stored image."""

    def own_key(self, url: str) -> str | None:
        return "images/a.png" if url == "https://own.example/images/a.png" else None

    async def get(self, key: str, max_bytes: int) -> bytes:
        return b"stored image bytes"


def test_edit_arguments_read_own_urls_and_refuse_others() -> None:
    seen: list[Any] = []

    async def record(request: Any) -> tuple[Plan, list[ImageEvent], None]:
        seen.append(request)
        raise ApiError(503, "stop here")

    def edit(arguments: dict[str, Any]) -> dict[str, Any]:
        call = rpc("tools/call", {"name": mcp.EDIT_TOOL_NAME, "arguments": arguments})
        result: dict[str, Any] = answer(asyncio.run(mcp.handle(
            "POST", json.dumps(call).encode(), {}, record, Bucket()
        )))["result"]  # fmt: skip
        return result

    edit({"model": "m", "prompt": "p", "image": ["https://own.example/images/a.png", "AAAA"],
          "extra_params": {"grow_mask": 2}})  # fmt: skip
    [request] = seen
    assert list(request.image) == [b"stored image bytes", b"\0\0\0"]
    assert request.options.grow_mask == 2  # a typed option, like the HTTP face
    refused = edit({"model": "m", "image": "https://other.example/images/a.png"})
    assert refused["isError"] is True
    assert "(parameter: image)" in refused["content"][0]["text"]
    assert len(seen) == 1  # refused before the pipeline
