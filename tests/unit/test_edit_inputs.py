"""Pure pieces of edits: multipart limits, the request converter, mask conventions."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from PIL import Image

from service import multipart
from service.edit_images import EditArea, image_tokens, load_image
from service.errors import ApiError
from service.openai_edits import parse_edit_request


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def form(
    data: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]
) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x", data=data, files=files)
    return request.read(), request.headers["content-type"]


IMAGE = png(Image.new("RGB", (64, 48), (10, 20, 30)))


def test_sdk_shaped_form_becomes_a_typed_request() -> None:
    body, content_type = form(
        {"prompt": "a hat", "model": "m", "n": "2", "stream": "true", "partial_images": "1",
         "left": "40", "creativity": "0.25", "search_prompt": "cat", "cfg_scale": "7"},
        [("image[]", ("a.png", IMAGE, "image/png")), ("image[]", ("b.png", IMAGE, "image/png")),
         ("mask", ("m.png", IMAGE, "image/png"))],
    )  # fmt: skip
    request = parse_edit_request(body, content_type, {}, False, multipart.Limits())
    assert (request.prompt, request.n, request.stream, request.partial_images) == (
        "a hat",
        2,
        True,
        1,
    )
    assert list(request.image) == [IMAGE, IMAGE] and request.mask == IMAGE
    assert (request.options.left, request.options.creativity) == (40, 0.25)
    assert request.options.search_prompt == "cat"
    assert dict(request.extra_params) == {"cfg_scale": "7"}  # validated later by the model row


@pytest.mark.parametrize(
    ("data", "param"),
    [({"n": "two"}, "n"), ({"left": "1.5"}, "left"), ({"stream": "maybe"}, "stream"),
     ({"creativity": "lots"}, "creativity")],
)  # fmt: skip
def test_form_values_of_the_wrong_type_name_the_field(data: dict[str, str], param: str) -> None:
    body, content_type = form(data, [("image", ("a.png", IMAGE, "image/png"))])
    with pytest.raises(ApiError) as caught:
        parse_edit_request(body, content_type, {}, False, multipart.Limits())
    assert (caught.value.status, caught.value.param) == (400, param)


def test_multipart_limits() -> None:
    body, content_type = form({"prompt": "x" * 100}, [("image", ("a.png", IMAGE, "image/png"))])
    with pytest.raises(ApiError) as caught:
        multipart.parse(body, content_type, multipart.Limits(max_file_bytes=100))
    assert (caught.value.status, caught.value.param) == (413, "image")
    with pytest.raises(ApiError) as caught:
        multipart.parse(body, content_type, multipart.Limits(max_field_bytes=10))
    assert (caught.value.status, caught.value.param) == (413, "prompt")
    with pytest.raises(ApiError) as caught:
        multipart.parse(body, content_type, multipart.Limits(max_parts=1))
    assert (caught.value.status, caught.value.code) == (400, "too_many_parts")
    with pytest.raises(ApiError) as caught:
        multipart.parse(body, "multipart/form-data", multipart.Limits())
    assert caught.value.code == "invalid_multipart"


def test_json_body_with_data_urls_and_image_url_objects() -> None:
    data_url = "data:image/png;base64," + base64.b64encode(IMAGE).decode()
    b64 = base64.b64encode(IMAGE).decode()
    body = json.dumps({"model": "m", "images": [{"image_url": data_url}, b64],
                       "mask": {"image_url": data_url}, "n": 2, "grow_mask": 3})  # fmt: skip
    request = parse_edit_request(body.encode(), "application/json", {}, False, multipart.Limits())
    assert list(request.image) == [IMAGE, IMAGE] and request.mask == IMAGE
    assert (request.n, request.options.grow_mask) == (2, 3)


@pytest.mark.parametrize(
    ("image", "param"),
    [("https://example.com/a.png", "image"), ("data:image/png,abc", "image"), ("!!", "image")],
)
def test_json_images_that_are_not_bytes_are_400s(image: str, param: str) -> None:
    body = json.dumps({"model": "m", "image": image}).encode()
    with pytest.raises(ApiError) as caught:
        parse_edit_request(body, "application/json", {}, False, multipart.Limits())
    assert caught.value.param == param


def test_openai_mask_becomes_each_convention() -> None:
    image = load_image(IMAGE, "image")
    mask = Image.new("RGBA", (64, 48), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 24))
    area = EditArea.from_openai_mask(png(mask), image)
    white = Image.open(io.BytesIO(base64.b64decode(area.white_is_edit())))
    black = Image.open(io.BytesIO(base64.b64decode(area.black_is_edit())))
    assert (white.getpixel((1, 1)), white.getpixel((60, 40))) == (255, 0)
    assert (black.getpixel((1, 1)), black.getpixel((60, 40))) == (0, 255)
    with pytest.raises(ApiError) as caught:
        EditArea.from_openai_mask(png(Image.new("RGBA", (10, 10))), image)
    assert caught.value.param == "mask" and "64x48" in caught.value.message


def test_image_tokens_follow_the_tile_rule() -> None:
    assert image_tokens(load_image(png(Image.new("RGB", (512, 512))), "image")) == 85 + 170
    assert image_tokens(load_image(png(Image.new("RGB", (1024, 1024))), "image")) == 85 + 170 * 4


def test_an_image_part_without_a_filename_is_still_the_image() -> None:
    """Found by schemathesis: a part with Content-Type image/png but no filename (as its
    encoding of the document's `image[]` sends it) was refused as not a file."""
    parts = [("image[]", (None, IMAGE, "image/png")), ("mask", (None, IMAGE, "image/png"))]
    body, content_type = form({"model": "m"}, parts)  # type: ignore[arg-type]
    request = parse_edit_request(body, content_type, {}, False, multipart.Limits())
    assert list(request.image) == [IMAGE] and request.mask == IMAGE
    text, content_type = form({"model": "m"}, [("image", (None, b"text", None))])  # type: ignore[list-item]
    with pytest.raises(ApiError) as info:
        parse_edit_request(text, content_type, {}, False, multipart.Limits())
    assert (info.value.status, info.value.param) == (400, "image")
