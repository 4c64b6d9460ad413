"""Deterministic pictures for the emulator's responses.

The image is a function of (prompt, seed, size, format) only, so tests can compare bytes,
yet different seeds or prompts give visibly different pictures a person can look at.
Everything is cheap Pillow primitives: a 2048x2048 PNG takes a few hundred milliseconds.
"""

from __future__ import annotations

import hashlib
import io
import random
import textwrap

from PIL import Image, ImageDraw, ImageFont

from emulator.models import ImageFormat

# Fast encoder settings: the emulator should never be the slow part of a benchmark.
_SAVE_ARGS: dict[ImageFormat, tuple[str, dict[str, int]]] = {
    "png": ("PNG", {"compress_level": 1}),
    "jpeg": ("JPEG", {"quality": 90}),
    "webp": ("WEBP", {"quality": 80, "method": 0}),
}
_MAX_TEXT_LINES = 6


def render(width: int, height: int, prompt: str, seed: int, fmt: ImageFormat) -> bytes:
    """Draw a picture for `prompt` and `seed` and encode it as PNG, JPEG or WebP."""
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    rng = random.Random(digest)
    image = _gradient(width, height, rng)
    draw = ImageDraw.Draw(image, "RGBA")  # RGBA mode blends translucent fills onto RGB
    _shapes(draw, width, height, rng)
    _caption(draw, width, height, prompt, f"seed {seed} · {width}x{height}")
    out = io.BytesIO()
    encoder, options = _SAVE_ARGS[fmt]
    image.save(out, encoder, **options)
    return out.getvalue()


def _colour(rng: random.Random, alpha: int | None = None) -> tuple[int, ...]:
    rgb = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    return rgb if alpha is None else (*rgb, alpha)


def _gradient(width: int, height: int, rng: random.Random) -> Image.Image:
    # Four random corner colours, bilinearly stretched: the box maps corner pixel centres
    # to the image corners so the whole surface is a smooth blend.
    corners = Image.new("RGB", (2, 2))
    corners.putdata([_colour(rng) for _ in range(4)])
    return corners.resize((width, height), Image.Resampling.BILINEAR, box=(0.5, 0.5, 1.5, 1.5))


def _shapes(draw: ImageDraw.ImageDraw, width: int, height: int, rng: random.Random) -> None:
    scale = min(width, height)
    for _ in range(rng.randint(5, 10)):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.25) * scale
        box = (x - r, y - r, x + r, y + r)
        fill = _colour(rng, alpha=rng.randint(90, 200))
        kind = rng.choice(("ellipse", "rectangle", "triangle"))
        if kind == "ellipse":
            draw.ellipse(box, fill=fill)
        elif kind == "rectangle":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=fill)


def _caption(draw: ImageDraw.ImageDraw, width: int, height: int, prompt: str, footer: str) -> None:
    size = max(10, min(width, height) // 24)
    font = ImageFont.load_default(size=size)
    # Average glyph width of the default font is about 0.55 em.
    columns = max(8, int(width * 0.9 / (size * 0.55)))
    lines = textwrap.wrap(prompt, columns) or [""]
    if len(lines) > _MAX_TEXT_LINES:
        lines = [*lines[: _MAX_TEXT_LINES - 1], lines[_MAX_TEXT_LINES - 1][: columns - 1] + "…"]
    text = "\n".join([*lines, footer])
    left, top = width * 0.05, height * 0.05
    bbox = draw.multiline_textbbox((left, top), text, font=font)
    pad = size // 3
    # A translucent dark panel keeps the text readable on any background.
    draw.rectangle(
        (bbox[0] - pad, bbox[1] - pad, bbox[2] + pad, bbox[3] + pad), fill=(0, 0, 0, 140)
    )
    draw.multiline_text((left, top), text, font=font, fill=(255, 255, 255, 255))
