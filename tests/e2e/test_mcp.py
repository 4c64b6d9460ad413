"""The MCP tool through the real Envoy, with the official `mcp` Python SDK as client."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
import pytest
from mcp import Client
from PIL import Image

from stack.local import BUCKET, LocalStack
from tests.e2e.test_edits import (
    BOX,
    FAST_UPSCALE,
    INPAINT,
    SEARCH_REPLACE,
    changed_inside,
    changed_outside,
    openai_mask,
    photo,
    png,
)
from tests.polling import wait_until


def call(
    stack: LocalStack, arguments: dict[str, Any], tool: str = "openai_image_generation"
) -> Any:
    async def run() -> Any:
        async with Client(f"{stack.envoy.url}/mcp") as client:
            tools = await client.list_tools()
            names = [tool.name for tool in tools.tools]
            assert names == ["openai_image_generation", "openai_image_edit"]
            return await client.call_tool(tool, arguments)

    return asyncio.run(run())


def edit(stack: LocalStack, arguments: dict[str, Any]) -> Any:
    return call(stack, arguments, tool="openai_image_edit")


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


# ----------------------------------------------------------------------------- edit tool


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_of(block: Any) -> Image.Image:
    picture = Image.open(io.BytesIO(base64.b64decode(block.data)))
    picture.load()
    return picture


def test_edit_tool_is_listed_with_its_schema(stack: LocalStack) -> None:
    async def run() -> Any:
        async with Client(f"{stack.envoy.url}/mcp") as client:
            return (await client.list_tools()).tools

    [_, tool] = asyncio.run(run())
    schema = tool.input_schema
    assert schema["required"] == ["image", "model"]
    assert INPAINT in schema["properties"]["model"]["enum"]
    assert {"image", "mask", "prompt", "extra_params", "response_format"} <= set(
        schema["properties"]
    )


def test_edit_tool_inpaints_the_transparent_area_of_a_base64_mask(stack: LocalStack) -> None:
    size = (256, 192)
    source = photo(size)
    result = edit(stack, {
        "model": INPAINT, "prompt": "a yellow sun", "image": b64(png(source)),
        "mask": "data:image/png;base64," + b64(png(openai_mask(size, BOX))),
        "extra_params": {"grow_mask": 0},
    })  # fmt: skip
    assert result.is_error is False, result.content
    [summary, block] = result.content
    assert "Edited 1 image(s) with stability.stable-image-inpaint-v1:0, 256x192" in summary.text
    edited = image_of(block)
    assert edited.size == size
    assert not changed_outside(source, edited, BOX)
    assert changed_inside(source, edited, BOX)


def test_edit_tool_takes_a_url_of_an_image_it_made(stack: LocalStack) -> None:
    made = call(stack, {"prompt": "a red fox", "model": "amazon.nova-canvas-v1:0",
                        "size": "320x320", "response_format": "url"})  # fmt: skip
    url = made.content[1].text
    upscaled = edit(stack, {"model": FAST_UPSCALE, "image": url})
    assert upscaled.is_error is False, upscaled.content
    assert image_of(upscaled.content[1]).size == (1280, 1280)
    # The same object named as s3://bucket/key works too, and the result can be a URL again.
    key = httpx.URL(url).path.split("/images/", 1)[1]
    again = edit(stack, {"model": FAST_UPSCALE, "image": [f"s3://{BUCKET}/images/{key}"],
                         "response_format": "url"})  # fmt: skip
    assert again.is_error is False, again.content
    downloaded = httpx.get(again.content[1].text, timeout=10)
    assert Image.open(io.BytesIO(downloaded.content)).size == (1280, 1280)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://example.com/images/2026/01/01/a.png",
        "s3://someone-elses-bucket/images/a.png",
    ],
    ids=["metadata", "foreign-host", "foreign-bucket"],
)
def test_edit_tool_refuses_urls_outside_its_bucket(stack: LocalStack, url: str) -> None:
    result = edit(stack, {"model": FAST_UPSCALE, "image": url})
    assert result.is_error is True
    assert "(parameter: image)" in result.content[0].text
    assert "not an image of this service's bucket" in result.content[0].text


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        ({"model": SEARCH_REPLACE, "prompt": "a ball"}, "search_prompt"),
        ({"model": INPAINT, "prompt": "x", "mask": b64(png(openai_mask((8, 8), (0, 0, 4, 4))))},
         "mask"),
        ({"model": INPAINT, "prompt": "x", "image": "not base64!"}, "image"),
        ({"model": INPAINT, "prompt": "x", "extra_params": {"no_such_option": 1}},
         "no_such_option"),
        ({"model": INPAINT, "prompt": "x", "extra_params": "grow_mask=2"}, "extra_params"),
        ({"model": INPAINT, "prompt": "x", "n": "two"}, "n"),
    ],
    ids=["missing-search-prompt", "mask-size", "not-base64", "unknown-extra", "extras-type",
         "n-type"],
)  # fmt: skip
def test_edit_tool_errors_name_the_field_and_count_as_client_errors(
    stack: LocalStack, arguments: dict[str, Any], param: str
) -> None:
    def client_errors() -> float:
        text = httpx.get(f"http://127.0.0.1:{stack.ports.metrics}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("imagegen_rpcs_total{")
            and "McpHttp" in line
            and 'outcome="client_error"' in line
        )

    before = client_errors()
    result = edit(stack, {"image": b64(png(photo((128, 128)))), **arguments})
    assert result.is_error is True
    assert f"(parameter: {param})" in result.content[0].text
    # The RPC's outcome is recorded as it ends, which may be just after the answer arrived.
    wait_until(lambda: client_errors() > before)
