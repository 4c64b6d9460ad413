"""Edits and variations end to end: the official openai SDK through the real Envoy binary to
the gRPC service and, via boto3, to the emulator's edit services. Every result is checked
on the decoded image: its size, its alpha, and the pixels an edit must not touch.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
from typing import Any

import grpc
import httpx
import openai
import pytest
from PIL import Image, ImageChops

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from stack.local import LocalStack
from tests.e2e.test_streaming import NODE_DIR
from tests.model_ids import NOVA, SD35, TITAN_V2

INPAINT = "us.stability.stable-image-inpaint-v1:0"
OUTPAINT = "us.stability.stable-outpaint-v1:0"
SEARCH_REPLACE = "us.stability.stable-image-search-replace-v1:0"
REMOVE_BG = "us.stability.stable-image-remove-background-v1:0"
FAST_UPSCALE = "us.stability.stable-fast-upscale-v1:0"
STYLE_TRANSFER = "us.stability.stable-style-transfer-v1:0"


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def photo(size: tuple[int, int] = (256, 192)) -> Image.Image:
    """A red square on a white background: easy to check after any edit."""
    image = Image.new("RGB", size, (255, 255, 255))
    width, height = size
    image.paste((200, 30, 30), (width // 4, height // 4, width * 3 // 4, height * 3 // 4))
    return image


def openai_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """OpenAI's convention: opaque everywhere, alpha 0 inside `box` (the area to edit)."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    return mask


def decode(b64: str | None) -> Image.Image:
    assert b64
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def changed_outside(
    before: Image.Image, after: Image.Image, box: tuple[int, int, int, int]
) -> bool:
    diff = ImageChops.difference(before.convert("RGB"), after.convert("RGB"))
    diff.paste((0, 0, 0), box)
    return diff.getbbox() is not None


def changed_inside(before: Image.Image, after: Image.Image, box: tuple[int, int, int, int]) -> bool:
    diff = ImageChops.difference(before.convert("RGB"), after.convert("RGB")).crop(box)
    return diff.getbbox() is not None


BOX = (16, 16, 96, 80)


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        (INPAINT, {"grow_mask": 0}),
        (NOVA, {}),
        (TITAN_V2, {}),
    ],
    ids=["stability-inpaint", "nova-inpainting", "titan-inpainting"],
)
def test_masked_edit_changes_only_the_transparent_area_of_the_openai_mask(
    client: openai.OpenAI, model: str, extra: dict[str, Any]
) -> None:
    size = (320, 320)
    source = photo(size)
    result = client.images.edit(
        model=model,
        image=("photo.png", png(source), "image/png"),
        mask=("mask.png", png(openai_mask(size, BOX)), "image/png"),
        prompt="a yellow sun",
        response_format="b64_json",
        extra_body=extra,
    )
    assert result.data
    edited = decode(result.data[0].b64_json)
    assert edited.size == size
    assert not changed_outside(source, edited, BOX)
    assert changed_inside(source, edited, BOX)
    assert result.usage is not None
    assert result.usage.input_tokens_details.image_tokens > 0


def test_stability_inpaint_grows_the_mask_by_grow_mask_only(client: openai.OpenAI) -> None:
    size = (256, 192)
    source = photo(size)
    result = client.images.edit(
        model=INPAINT,
        image=("photo.png", png(source), "image/png"),
        mask=("mask.png", png(openai_mask(size, BOX)), "image/png"),
        prompt="a yellow sun",
        response_format="b64_json",
    )
    edited = decode(result.data[0].b64_json if result.data else None)
    grown = (BOX[0] - 5, BOX[1] - 5, BOX[2] + 5, BOX[3] + 5)  # the default grow_mask is 5
    assert changed_outside(source, edited, BOX)
    assert not changed_outside(source, edited, grown)


def test_outpaint_grows_the_canvas_and_keeps_the_original(client: openai.OpenAI) -> None:
    source = photo((200, 160))
    result = client.images.edit(
        model=OUTPAINT,
        image=("photo.png", png(source), "image/png"),
        prompt="a meadow",
        response_format="b64_json",
        extra_body={"left": 40, "right": 8, "up": 24, "down": 0},
    )
    edited = decode(result.data[0].b64_json if result.data else None)
    assert edited.size == (248, 184)
    assert result.size == "248x184"
    kept = edited.convert("RGB").crop((40, 24, 240, 184))
    assert ImageChops.difference(kept, source).getbbox() is None


def test_search_and_replace_changes_the_middle(client: openai.OpenAI) -> None:
    source = photo((256, 256))
    result = client.images.edit(
        model=SEARCH_REPLACE,
        image=("photo.png", png(source), "image/png"),
        prompt="a blue ball",
        response_format="b64_json",
        extra_body={"search_prompt": "red square"},
    )
    edited = decode(result.data[0].b64_json if result.data else None)
    assert edited.size == source.size
    assert changed_inside(source, edited, (64, 64, 192, 192))
    assert not changed_outside(source, edited, (64, 64, 192, 192))


def test_remove_background_returns_alpha(client: openai.OpenAI) -> None:
    source = photo((256, 192))
    result = client.images.edit(
        model=REMOVE_BG,
        image=("photo.png", png(source), "image/png"),
        prompt="remove the background",
        response_format="b64_json",
    )
    edited = decode(result.data[0].b64_json if result.data else None)
    assert edited.mode == "RGBA"
    alpha = edited.getchannel("A")
    assert alpha.getpixel((2, 2)) == 0  # the white background is gone
    assert alpha.getpixel((128, 96)) == 255  # the red square stays
    assert result.background == "transparent"


def test_fast_upscale_returns_four_times_the_size(client: openai.OpenAI) -> None:
    result = client.images.edit(
        model=FAST_UPSCALE,
        image=("photo.png", png(photo((120, 80))), "image/png"),
        prompt="upscale",
        response_format="b64_json",
    )
    assert decode(result.data[0].b64_json if result.data else None).size == (480, 320)


def test_style_transfer_mixes_both_images(client: openai.OpenAI) -> None:
    content = Image.new("RGB", (128, 128), (255, 0, 0))
    style = Image.new("RGB", (64, 64), (0, 0, 255))
    result = client.images.edit(
        model=STYLE_TRANSFER,
        image=[("content.png", png(content), "image/png"), ("style.png", png(style), "image/png")],
        prompt="",
        response_format="b64_json",
    )
    edited = decode(result.data[0].b64_json if result.data else None).convert("RGB")
    assert edited.size == (128, 128)
    pixel = edited.getpixel((64, 64))
    assert isinstance(pixel, tuple)
    red, _, blue = pixel[:3]
    assert red > 60 and blue > 60  # neither input alone


def test_sd35_image_to_image_keeps_the_input_size(client: openai.OpenAI) -> None:
    source = photo((320, 256))
    result = client.images.edit(
        model=SD35,
        image=("photo.jpg", _jpeg(source), "image/jpeg"),
        prompt="a watercolor",
        response_format="b64_json",
        extra_body={"strength": 0.3},
    )
    edited = decode(result.data[0].b64_json if result.data else None)
    assert edited.size == (320, 256)
    assert changed_inside(source, edited, (0, 0, 320, 256))


# The openai SDK marks create_variation deprecated (OpenAI serves it for DALL·E 2 only); this
# service still serves /v1/images/variations, and clients still call it.
SDK_DEPRECATES_VARIATIONS = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@SDK_DEPRECATES_VARIATIONS
def test_create_variation_with_nova_and_n(client: openai.OpenAI) -> None:
    result = client.images.create_variation(
        model=NOVA,
        image=("photo.png", png(photo((512, 512))), "image/png"),
        n=2,
        size="512x512",
        response_format="b64_json",
    )
    assert result.data and len(result.data) == 2
    assert {decode(item.b64_json).size for item in result.data} == {(512, 512)}


@SDK_DEPRECATES_VARIATIONS
def test_create_variation_with_sd35_and_a_prompt_in_extra_body(client: openai.OpenAI) -> None:
    source = photo((320, 256))
    result = client.images.create_variation(
        model=SD35,
        image=("photo.png", png(source), "image/png"),
        n=2,
        response_format="b64_json",
        extra_body={"prompt": "the same scene at dusk", "strength": 0.5},
    )
    assert result.data and len(result.data) == 2
    edited = [decode(item.b64_json) for item in result.data]
    assert {image.size for image in edited} == {(320, 256)}
    assert all(changed_inside(source, image, (0, 0, 320, 256)) for image in edited)


def test_edit_url_response_downloads(client: openai.OpenAI) -> None:
    result = client.images.edit(
        model=FAST_UPSCALE,
        image=("photo.png", png(photo((64, 64))), "image/png"),
        prompt="upscale",
        response_format="url",
    )
    assert result.data and result.data[0].url
    downloaded = httpx.get(result.data[0].url, timeout=30)
    assert Image.open(io.BytesIO(downloaded.content)).size == (256, 256)


def test_json_body_with_a_data_url(stack: LocalStack) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(png(photo((96, 64)))).decode()
    response = httpx.post(
        f"{stack.base_url}/images/edits",
        json={"model": FAST_UPSCALE, "image": data_url, "response_format": "b64_json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert decode(response.json()["data"][0]["b64_json"]).size == (384, 256)


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


# ----------------------------------------------------------------------------- bad input


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"image": ("x.png", b"not an image at all", "image/png")}, "image"),
        ({"mask": ("m.png", png(openai_mask((10, 10), (0, 0, 5, 5))), "image/png")}, "mask"),
        ({"image": [("a.png", png(photo((64, 64))), "image/png")] * 20}, "image"),
        ({"extra_body": {"no_such_option": 1}}, "no_such_option"),
        ({"model": SEARCH_REPLACE}, "search_prompt"),
        ({"model": "us.stability.stable-image-core-v1:1"}, "model"),
        ({"extra_body": {"grow_mask": 99}}, "grow_mask"),
        ({"n": 11}, "n"),
    ],
    ids=[
        "not-an-image",
        "mask-size",
        "20-images",
        "unknown-extra",
        "search-prompt",
        "generation-model",
        "range",
        "n",
    ],
)
def test_bad_edits_are_400s_naming_the_field(
    client: openai.OpenAI, kwargs: dict[str, Any], param: str
) -> None:
    request: dict[str, Any] = {
        "model": INPAINT,
        "image": ("photo.png", png(photo((128, 128))), "image/png"),
        "prompt": "a sun",
        **kwargs,
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(**request)
    assert caught.value.status_code == 400
    assert _error(caught.value)["param"] == param


def test_an_edit_without_an_image_is_a_400(stack: LocalStack) -> None:
    response = httpx.post(
        f"{stack.base_url}/images/edits",
        data={"model": INPAINT, "prompt": "a sun"},
        files={"unused": (None, "x")},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "image"


def test_a_60_mb_part_is_a_413_naming_it(stack: LocalStack) -> None:
    response = httpx.post(
        f"{stack.base_url}/images/edits",
        data={"model": INPAINT, "prompt": "a sun"},
        files={"image": ("huge.png", b"\0" * (60 * 1000 * 1000), "image/png")},
        timeout=120,
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["param"] == "image"


def test_broken_multipart_is_a_400(stack: LocalStack) -> None:
    response = httpx.post(
        f"{stack.base_url}/images/edits",
        content=b"--xyz\r\nContent-Disposition: form-data; name=prompt\r\n\r\nhi",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert json.loads(response.text)["error"]["code"] == "invalid_multipart"


# ----------------------------------------------------------------------------- streaming

PARTIAL = "image_edit.partial_image"
COMPLETED = "image_edit.completed"


def test_python_sdk_streams_edit_events_with_usage_once(client: openai.OpenAI) -> None:
    size = (256, 192)
    stream = client.images.edit(
        model=INPAINT,
        image=("photo.png", png(photo(size)), "image/png"),
        mask=("mask.png", png(openai_mask(size, BOX)), "image/png"),
        prompt="a yellow sun",
        n=2,
        stream=True,
        partial_images=2,
    )
    events = [event.model_dump() for event in stream]
    assert [event["type"] for event in events].count(PARTIAL) == 4
    completed = [event for event in events if event["type"] == COMPLETED]
    assert len(completed) == 2
    assert [event.get("usage") is not None for event in completed] == [False, True]
    assert completed[-1]["usage"]["input_tokens_details"]["image_tokens"] > 0
    assert {decode(event["b64_json"]).size for event in events} == {size}


def test_raw_sse_names_every_edit_event(stack: LocalStack) -> None:
    with httpx.stream(
        "POST",
        f"{stack.base_url}/images/edits",
        data={"model": FAST_UPSCALE, "prompt": "x", "stream": "true", "partial_images": "1"},
        files={"image": ("a.png", png(photo((64, 64))), "image/png")},
        timeout=60,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    names = [
        line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event:")
    ]
    assert names == [PARTIAL, COMPLETED]
    assert text.rstrip().endswith("data: [DONE]")


# ----------------------------------------------------------------------------- Node SDK

NODE_SCRIPT = NODE_DIR / "edit.mjs"


def node_file(name: str, image: Image.Image) -> dict[str, str]:
    return {"name": name, "type": "image/png", "b64": base64.b64encode(png(image)).decode()}


def run_node_edit(node: str, base_url: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    """One edit with the Node SDK: its printed lines, without the final {"done": true}."""
    done = subprocess.run(
        [node, str(NODE_SCRIPT), base_url, json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and ("done" in lines[-1] or "error" in lines[-1]), done.stdout[-2000:]
    return lines[:-1] if "done" in lines[-1] else lines


SQUARE = photo((320, 320))
RED, BLUE = Image.new("RGB", (128, 128), (255, 0, 0)), Image.new("RGB", (64, 64), (0, 0, 255))


def _unchanged_outside_box(result: Image.Image) -> bool:
    return result.size == SQUARE.size and not changed_outside(SQUARE, result, BOX)


NODE_CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "inpaint": (
        {"model": INPAINT, "image": [node_file("a.png", SQUARE)], "grow_mask": 0,
         "mask": node_file("m.png", openai_mask(SQUARE.size, BOX)), "prompt": "a sun"},
        _unchanged_outside_box,
    ),
    "nova-inpainting": (
        {"model": NOVA, "image": [node_file("a.png", SQUARE)],
         "mask": node_file("m.png", openai_mask(SQUARE.size, BOX)), "prompt": "a sun"},
        _unchanged_outside_box,
    ),
    "outpaint": (
        {"model": OUTPAINT, "image": [node_file("a.png", SQUARE)], "prompt": "sky", "up": 32},
        lambda result: result.size == (320, 352),
    ),
    "search-replace": (
        {"model": SEARCH_REPLACE, "image": [node_file("a.png", SQUARE)], "prompt": "a ball",
         "search_prompt": "square"},
        lambda result: not changed_outside(SQUARE, result, (80, 80, 240, 240)),
    ),
    "remove-background": (
        {"model": REMOVE_BG, "image": [node_file("a.png", SQUARE)], "prompt": "cut out"},
        lambda result: result.getchannel("A").getpixel((1, 1)) == 0,
    ),
    "fast-upscale": (
        {"model": FAST_UPSCALE, "image": [node_file("a.png", photo((100, 60)))], "prompt": "x"},
        lambda result: result.size == (400, 240),
    ),
    "style-transfer": (
        {"model": STYLE_TRANSFER, "image": [node_file("c.png", RED), node_file("s.png", BLUE)],
         "prompt": "mix"},
        lambda result: result.size == (128, 128) and result.convert("RGB").getpixel((5, 5))[2] > 60,
    ),
    "sd35-image-to-image": (
        {"model": SD35, "image": [node_file("a.png", SQUARE)], "prompt": "oil", "strength": 0.5},
        lambda result: result.size == SQUARE.size and changed_inside(SQUARE, result, BOX),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(NODE_CASES))
def test_node_sdk_images_edit(node: str, stack: LocalStack, case: str) -> None:
    request, check = NODE_CASES[case]
    [answer] = run_node_edit(node, stack.base_url, {**request, "response_format": "b64_json"})
    assert "error" not in answer, answer
    assert check(decode(answer["data"][0]["b64_json"]))


def test_node_sdk_streams_an_edit(node: str, stack: LocalStack) -> None:
    request = {"model": FAST_UPSCALE, "image": [node_file("a.png", photo((64, 64)))],
               "prompt": "x", "stream": True, "partial_images": 2, "n": 1}  # fmt: skip
    events = run_node_edit(node, stack.base_url, request)
    assert [event["type"] for event in events] == [PARTIAL, PARTIAL, COMPLETED]
    assert events[-1]["usage"]["output_tokens"] == 1
    assert decode(events[-1]["b64_json"]).size == (256, 256)


def test_node_sdk_gets_a_400_naming_the_missing_search_prompt(node: str, stack: LocalStack) -> None:
    request = {"model": SEARCH_REPLACE, "image": [node_file("a.png", SQUARE)], "prompt": "x"}
    [answer] = run_node_edit(node, stack.base_url, request)
    assert answer["error"]["status"] == 400
    assert answer["error"]["param"] == "search_prompt"


# ----------------------------------------------------------------------------- typed gRPC


def test_typed_grpc_edit_streams_the_image_then_usage(stack: LocalStack) -> None:
    request = pb.ImageEditRequest(
        model=FAST_UPSCALE,
        image=[png(photo((50, 40)))],
        options=pb.EditOptions(seed=7),
        response_format="b64_json",
    )
    with grpc.insecure_channel(stack.grpc_target) as channel:
        events = list(pb_grpc.ImageGenerationStub(channel).Edit(request, timeout=60))
        with pytest.raises(grpc.RpcError) as caught:
            bad = pb.ImageEditRequest(model=INPAINT, prompt="x", image=[b"nope"])
            list(pb_grpc.ImageGenerationStub(channel).Edit(bad, timeout=60))
    [image, usage] = events
    assert Image.open(io.BytesIO(image.image.data)).size == (200, 160)
    assert (image.image.width, image.image.height) == (200, 160)
    assert usage.usage.output_tokens == 1 and usage.usage.input_tokens > 0
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'image' is not a readable image" in str(caught.value.details())
