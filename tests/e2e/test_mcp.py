"""The MCP tool through the real Envoy, with the official `mcp` Python SDK as client."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
from mcp import Client
from PIL import Image

from stack.local import LocalStack


def call(stack: LocalStack, arguments: dict[str, Any]) -> Any:
    async def run() -> Any:
        async with Client(f"{stack.envoy.url}/mcp") as client:
            tools = await client.list_tools()
            assert [tool.name for tool in tools.tools] == ["openai_image_generation"]
            return await client.call_tool("openai_image_generation", arguments)

    return asyncio.run(run())


def test_tool_returns_images(stack: LocalStack) -> None:
    result = call(stack, {"prompt": "a red fox", "model": "stability.sd3-5-large-v1:0", "n": 2,
                          "size": "1792x1024", "output_format": "webp"})  # fmt: skip
    assert result.is_error is False
    images = [block for block in result.content if block.type == "image"]
    assert len(images) == 2
    for block in images:
        assert block.mime_type == "image/webp"
        picture = Image.open(io.BytesIO(base64.b64decode(block.data)))
        assert (picture.format, picture.size) == ("WEBP", (1344, 768))


def test_tool_returns_urls(stack: LocalStack) -> None:
    result = call(stack, {"prompt": "a red fox", "model": "amazon.nova-canvas-v1:0",
                          "size": "320x320", "response_format": "url"})  # fmt: skip
    [summary, link] = result.content
    assert "1 image(s)" in summary.text
    assert httpx.get(link.text, timeout=10).headers["content-type"] == "image/png"


def test_tool_errors_name_the_parameter(stack: LocalStack) -> None:
    result = call(stack, {"prompt": "a red fox", "model": "amazon.titan-image-generator-v1",
                          "size": "999x999"})  # fmt: skip
    assert result.is_error is True
    assert "size" in result.content[0].text


def test_get_is_405(stack: LocalStack) -> None:
    assert httpx.get(f"{stack.envoy.url}/mcp", timeout=5).status_code == 405
