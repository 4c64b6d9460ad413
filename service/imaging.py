"""Pillow work on finished images: format conversion, header reading and coarse-to-fine previews.

Bedrock returns finished images as base64. An image that goes out in the format Bedrock made
is never decoded on the way: its base64 is passed through as-is, and its size read from the
header at the start of the file. Bytes are made only where they are needed (the typed gRPC
API, S3 uploads, re-encoding, previews), once.

A preview is the finished image shrunk to a small fraction of its size and scaled back up to
full size: a coarse mosaic at first, finer each time. It is a real rendering of the final
image, never a fake "model progress" frame.
"""

from __future__ import annotations

import binascii
import io
import struct
import zlib

import pybase64
from PIL import Image

from service.errors import ApiError

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
# Shrink factors of the previews, coarse to fine, for partial_images = 1, 2, 3.
PREVIEW_SCALES = {1: (1 / 8,), 2: (1 / 16, 1 / 4), 3: (1 / 32, 1 / 8, 1 / 4)}
# Previews are throwaway: a low JPEG/WebP quality keeps them small.
PREVIEW_QUALITY = 40
# Base64 characters decoded to find the pixel size: PNG's IHDR is in the first 33 bytes;
# a JPEG's SOF comes after its EXIF/ICC segments, which rarely exceed a few dozen KB.
HEADER_B64_CHARS = 64 * 1024
# A PNG starts with its signature and its IHDR chunk (width and height are bytes 16-23, the
# chunk's CRC bytes 29-32): the first 44 base64 characters hold those 33 bytes.
_PNG_START = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
_PNG_HEADER_B64_CHARS = 44


class EncodedImage:
    """A finished, encoded image, held as base64 text, as bytes, or both.

    Each form is computed from the other at most once, when first asked for (a lost race
    between two threads only computes it twice).
    """

    __slots__ = ("_b64", "_data", "height", "output_format", "width")

    def __init__(
        self,
        output_format: str,
        width: int,
        height: int,
        *,
        data: bytes | None = None,
        b64: str | None = None,
    ) -> None:
        if data is None and b64 is None:
            raise ValueError("an EncodedImage needs its bytes or its base64")
        self.output_format, self.width, self.height = output_format, width, height
        self._data, self._b64 = data, b64

    @property
    def data(self) -> bytes:
        if self._data is None:
            assert self._b64 is not None
            self._data = decode_base64(self._b64)
        return self._data

    @property
    def b64(self) -> str:
        if self._b64 is None:
            assert self._data is not None
            self._b64 = pybase64.b64encode(self._data).decode("ascii")
        return self._b64


def decode_base64(b64: str) -> bytes:
    try:
        return pybase64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(502, "Bedrock returned an image that is not valid base64.") from exc


def passes_through(source_format: str, target_format: str, compression: int) -> bool:
    """Whether Bedrock's image can go out unchanged (no conversion, no lossy re-compression)."""
    lossy = target_format in ("jpeg", "webp")
    return source_format == target_format and not (lossy and compression < 100)


def header_size(b64: str) -> tuple[int, int] | None:
    """The pixel size from the image header at the start of the base64, without decoding the
    rest; None when it is not found there (a late JPEG header, or WebP, whose reader wants the
    whole file). Cheap enough for the event loop: a PNG's is read without Pillow."""
    try:
        start = decode_base64(b64[:_PNG_HEADER_B64_CHARS])
    except ApiError:
        return None
    if start.startswith(_PNG_START) and len(start) >= 33:
        width, height, crc = struct.unpack(">II5xI", start[16:33])
        if width and height and zlib.crc32(start[12:29]) == crc:
            return width, height
        return None  # a broken header: the whole image is decoded, and refused, later
    try:
        size: tuple[int, int] = Image.open(io.BytesIO(decode_base64(b64[:HEADER_B64_CHARS]))).size
    except (OSError, ApiError):
        return None
    return size


def finalize(
    b64: str, source_format: str, target_format: str, compression: int, keep_bytes: bool = False
) -> EncodedImage:
    """The image in the requested format, re-encoded only when something must change.

    `compression` (1-100) is the JPEG/WebP quality; PNG is lossless and ignores it. An
    unchanged image keeps Bedrock's base64 (and its bytes with `keep_bytes`); a re-encoded
    one has both. Decodes and encodes: call it off the event loop.
    """
    data = decode_base64(b64)
    try:
        source = Image.open(io.BytesIO(data))
        width, height = source.size
        if passes_through(source_format, target_format, compression):
            kept = data if keep_bytes else None
            return EncodedImage(target_format, width, height, data=kept, b64=b64)
        encoded = EncodedImage(
            target_format, width, height, data=_encode(source, target_format, compression)
        )
        encoded.b64  # noqa: B018  # encoded here, off the loop: most answers want base64
        return encoded
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
