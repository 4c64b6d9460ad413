"""Input images and masks of edits: decoded, checked, converted to each model's convention.

OpenAI marks the area to edit with alpha = 0 in a PNG the size of the image. Stability's
services take a grayscale mask where white is the area to edit; Nova Canvas and Titan take a
black-and-white mask where black is the area to edit. `EditArea` holds the OpenAI mask as
what it means (255 = edit) and renders either convention, so no adapter reads alpha itself.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from service.errors import invalid_param

INPUT_FORMATS = ("png", "jpeg", "webp")
# Pillow refuses larger images as decompression bombs; every model's own limit is lower.
MAX_DECODE_PIXELS = 40_000_000


@dataclass(frozen=True)
class SourceImage:
    """One uploaded image: its bytes as sent, and what they hold."""

    data: bytes
    format: str  # png | jpeg | webp
    width: int
    height: int
    has_alpha: bool
    param: str  # how the request names it: image, image[1], ...

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def b64_png_or_jpeg(self) -> str:
        """Base64 PNG or JPEG, for models that take no WebP (converted losslessly to PNG)."""
        if self.format in ("png", "jpeg"):
            return self.b64()
        with Image.open(io.BytesIO(self.data)) as image:
            return _b64_png(image)


def load_image(data: bytes, param: str) -> SourceImage:
    """Decode and check one input image (raises a 400 naming `param`)."""
    if not data:
        raise invalid_param(param, f"'{param}' is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = (image.format or "").lower()
                width, height = image.size
                if width * height > MAX_DECODE_PIXELS:
                    raise invalid_param(
                        param,
                        f"'{param}' is {width}x{height}: more than {MAX_DECODE_PIXELS} pixels.",
                    )
                image.load()  # a truncated or corrupt file fails here, not at Bedrock
                has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    except (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning, SyntaxError):
        raise invalid_param(
            param, f"'{param}' is not a readable image: send PNG, JPEG or WebP bytes."
        ) from None
    if fmt not in INPUT_FORMATS:
        raise invalid_param(
            param, f"'{param}' is a {fmt or 'unknown'} image; accepted formats: png, jpeg, webp."
        )
    return SourceImage(data, fmt, width, height, has_alpha, param)


@dataclass(frozen=True)
class EditArea:
    """Where to edit, 255 = edit and 0 = keep (grayscale in between), one value per pixel."""

    plane: Image.Image  # mode L

    @classmethod
    def from_openai_mask(cls, data: bytes, image: SourceImage) -> EditArea:
        """The OpenAI mask (alpha = 0 marks the edit area) for `image`; 400 naming `mask`."""
        mask = load_image(data, "mask")
        if not mask.has_alpha:
            raise invalid_param(
                "mask",
                "'mask' has no alpha channel: send a PNG whose fully transparent pixels "
                "(alpha = 0) mark the area to edit.",
            )
        if mask.size != image.size:
            raise invalid_param(
                "mask",
                f"'mask' is {mask.width}x{mask.height} but the image is "
                f"{image.width}x{image.height}: they must be the same size.",
            )
        return cls(ImageOps.invert(_alpha(mask.data)))

    @classmethod
    def from_image_alpha(cls, image: SourceImage) -> EditArea:
        """The image's own transparent pixels as the edit area (OpenAI's rule without a mask)."""
        return cls(ImageOps.invert(_alpha(image.data)))

    def is_empty(self) -> bool:
        return self.plane.getbbox() is None

    def white_is_edit(self) -> str:
        """Stability's convention: grayscale PNG, white = edit."""
        return _b64_png(self.plane)

    def black_is_edit(self) -> str:
        """Nova Canvas / Titan convention: black = edit, white = keep, nothing in between."""
        binary = self.plane.point(lambda value: 0 if value >= 128 else 255)
        return _b64_png(binary)


def _alpha(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGBA").getchannel("A")


def _b64_png(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def image_tokens(image: SourceImage) -> int:
    """Input tokens of one image, by OpenAI's published tile rule for image inputs.

    Fit into 2048x2048, scale the short side down to 768, then 85 tokens plus 170 per
    512-pixel tile. Bedrock bills edits per image, so this is only what an OpenAI client
    expects to see in `usage.input_tokens_details.image_tokens`.
    """
    width, height = float(image.width), float(image.height)
    fit = min(1.0, 2048 / max(width, height))
    width, height = width * fit, height * fit
    shrink = min(1.0, 768 / min(width, height))
    width, height = width * shrink, height * shrink
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)
