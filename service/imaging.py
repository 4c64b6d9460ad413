"""Pillow work on finished images: format conversion and coarse-to-fine previews.

Bedrock returns finished images only. A preview is the finished image shrunk to a small
fraction of its size and scaled back up to full size: a coarse mosaic at first, finer each
time. It is a real rendering of the final image, never a fake "model progress" frame.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

from PIL import Image

from service.errors import ApiError

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
# Shrink factors of the previews, coarse to fine, for partial_images = 1, 2, 3.
PREVIEW_SCALES = {1: (1 / 8,), 2: (1 / 16, 1 / 4), 3: (1 / 32, 1 / 8, 1 / 4)}
# Previews are throwaway: a low JPEG/WebP quality keeps them small.
PREVIEW_QUALITY = 40


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    output_format: str
    width: int
    height: int


def decode_base64(b64: str) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(502, "Bedrock returned an image that is not valid base64.") from exc


def finalize(data: bytes, source_format: str, target_format: str, compression: int) -> EncodedImage:
    """The image in the requested format, re-encoded only when something must change.

    `compression` (1-100) is the JPEG/WebP quality; PNG is lossless and ignores it.
    """
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        lossy = target_format in ("jpeg", "webp")
        if source_format == target_format and not (lossy and compression < 100):
            return EncodedImage(data, target_format, width, height)
        return EncodedImage(
            _encode(image, target_format, compression), target_format, width, height
        )
    except OSError as exc:
        raise ApiError(502, f"Bedrock returned an unreadable image: {exc}") from exc


def previews(image: EncodedImage, count: int) -> list[bytes]:
    """`count` (0-3) coarse-to-fine renderings of the finished image, in its format and size.

    Shrunk with a box filter (each block is the average of its pixels), then enlarged with
    nearest-neighbour: flat blocks compress to a fraction of the final image (a bilinear
    enlargement made smooth gradients that PNG stored in about as many bytes as the image).
    """
    if count == 0:
        return []
    original = Image.open(io.BytesIO(image.data))
    original.load()
    frames = []
    for scale in PREVIEW_SCALES[count]:
        small = original.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BOX,
        )
        coarse = small.resize((image.width, image.height), Image.Resampling.NEAREST)
        frames.append(_encode(coarse, image.output_format, PREVIEW_QUALITY))
    return frames


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    if fmt == "jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG", compress_level=6)
    else:
        image.save(out, PIL_FORMATS[fmt], quality=quality)
    return out.getvalue()
