"""The emulator's pictures: real images of the requested size and format, deterministic."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from emulator.models import ImageFormat
from emulator.render import render


@pytest.mark.parametrize(
    ("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]
)
def test_encodes_the_requested_format_and_size(fmt: ImageFormat, pil_format: str) -> None:
    with Image.open(io.BytesIO(render(1173, 640, "a lighthouse", 7, fmt))) as image:
        assert (image.format, image.size) == (pil_format, (1173, 640))


def test_is_deterministic_and_varies_with_prompt_and_seed() -> None:
    first = render(512, 512, "a lighthouse", 7, "png")
    assert render(512, 512, "a lighthouse", 7, "png") == first
    assert render(512, 512, "a lighthouse", 8, "png") != first
    assert render(512, 512, "a harbour", 7, "png") != first


def test_is_not_a_blank_canvas() -> None:
    with Image.open(io.BytesIO(render(320, 320, "colours", 1, "png"))) as image:
        colours = image.convert("RGB").getcolors(maxcolors=320 * 320)
    assert colours is not None and len(colours) > 100


def test_long_prompts_and_tiny_images_render() -> None:
    with Image.open(io.BytesIO(render(64, 64, "word " * 2000, 0, "jpeg"))) as image:
        assert image.size == (64, 64)


def test_a_large_png_renders() -> None:
    # How fast it renders is the benchmark's business (make bench), not a test's.
    png = render(2048, 2048, "a wide landscape at dusk", 123, "png")
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (2048, 2048) and image.format == "PNG"
