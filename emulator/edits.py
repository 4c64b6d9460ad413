"""The emulator's image editing: Stability's 13 Image Services, SD3.5 image-to-image and the
Nova Canvas / Titan edit tasks. Strict validation of each body, and real outputs a person
(and a test) can check.

What each edit does to the pixels is simple but honest about its inputs: inpaint and erase
change only the masked area (grown by `grow_mask`); outpaint grows the canvas by exactly the
requested pixels and keeps the original inside it; remove-background returns alpha (the
colour of the image border becomes transparent); upscalers return the larger size;
search-and-replace / recolor change a region in the middle; style transfer blends both
inputs. As in `models.py`, limits are written here from the Bedrock reference again, not
imported from the service, so the emulator stays an independent check.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from PIL import Image, ImageChops, ImageFilter, ImageOps

from emulator.models import (
    ASPECT_RATIO_SIZES,
    PARAMS_FIELD,
    STYLE_PRESETS,
    CanvasRules,
    ImageFormat,
    ImageModel,
    InputLimits,
    Kind,
    ServiceRules,
    StabilityRules,
    _canvas_config,
    _fail,
    _integer,
    _number,
    _object,
    _string,
    validate_stability,
    validation_error,
)
from emulator.render import render

# (key, low, high) of the numeric options.
_RANGES: Mapping[str, tuple[float, float]] = {
    "grow_mask": (0, 20),
    "left": (0, 2000),
    "right": (0, 2000),
    "up": (0, 2000),
    "down": (0, 2000),
    "control_strength": (0, 1),
    "fidelity": (0, 1),
    "composition_fidelity": (0, 1),
    "style_strength": (0, 1),
    "change_strength": (0.1, 1),
}
_CREATIVITY = {
    "outpaint": (0.0, 1.0),
    "creative_upscale": (0.1, 0.5),
    "conservative_upscale": (0.2, 0.5),
}
_INTEGER_KEYS = frozenset({"grow_mask", "left", "right", "up", "down"})


@dataclass(frozen=True)
class EditJob:
    """A validated edit: what to do to which pixels, and how many results."""

    kind: Kind
    images: tuple[Image.Image, ...]
    mask: Image.Image | None  # mode L, 255 = edit
    prompt: str
    width: int
    height: int
    count: int
    seed: int | None
    fmt: ImageFormat
    options: Mapping[str, object] = field(default_factory=dict)


def _decode(
    obj: Mapping[str, object], key: str, path: str, formats: tuple[str, ...]
) -> Image.Image:
    value, where = obj[key], f"{path}/{key}"
    if not isinstance(value, str):
        _fail(where, "expected type: String")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(value, validate=True)))
        image.load()
    except (ValueError, OSError, Image.DecompressionBombError):
        _fail(where, "is not a base64-encoded image")
    if (image.format or "").lower() not in formats:
        _fail(where, f"image format {image.format} is not one of {', '.join(formats)}")
    return image


def _check_limits(image: Image.Image, where: str, limits: InputLimits) -> None:
    width, height = image.size
    if min(width, height) < limits.min_side:
        _fail(where, f"{width}x{height} has a side below {limits.min_side} pixels")
    if limits.max_side and max(width, height) > limits.max_side:
        _fail(where, f"{width}x{height} has a side above {limits.max_side} pixels")
    if not limits.min_pixels <= width * height <= limits.max_pixels:
        _fail(where, f"{width}x{height} is outside {limits.min_pixels}-{limits.max_pixels} pixels")
    if limits.max_aspect and max(width, height) / min(width, height) > limits.max_aspect:
        _fail(where, f"aspect ratio of {width}x{height} is outside 1:{limits.max_aspect}")


def _mask_plane(
    image: Image.Image, size: tuple[int, int], where: str, white_is_edit: bool
) -> Image.Image:
    if image.size != size:
        _fail(where, f"mask is {image.size[0]}x{image.size[1]}, the image {size[0]}x{size[1]}")
    plane = image.convert("L")
    return plane if white_is_edit else ImageOps.invert(plane)


def validate_service(rules: ServiceRules, body: object) -> EditJob:
    allowed = {*rules.image_fields, "output_format", "seed", *rules.keys}
    required = [*rules.image_fields, *(["prompt"] if rules.prompt_required else [])]
    if rules.kind == "search_replace":
        required.append("search_prompt")
    if rules.kind == "search_recolor":
        required.append("select_prompt")
    top = _object(body, "", allowed, required)
    prompt = _string(top, "prompt", "", min_len=1, max_len=10_000) or ""
    for key in ("negative_prompt", "search_prompt", "select_prompt"):
        _string(top, key, "", min_len=1, max_len=10_000)
    _string(top, "style_preset", "", enum=STYLE_PRESETS)
    _string(top, "aspect_ratio", "", enum=ASPECT_RATIO_SIZES)
    seed = _integer(top, "seed", "", 0, rules.seed_max)
    fmt: ImageFormat = _string(top, "output_format", "", enum=rules.formats) or "png"  # type: ignore[assignment]
    options: dict[str, object] = {}
    for key, (low, high) in _RANGES.items():
        if key in top:
            if key in _INTEGER_KEYS:
                options[key] = _integer(top, key, "", int(low), int(high))
            else:
                options[key] = _number(top, key, "", low, high)
    if "creativity" in top:
        options["creativity"] = _number(top, "creativity", "", *_CREATIVITY[rules.kind])
    images = tuple(_decode(top, name, "", ("png", "jpeg", "webp")) for name in rules.image_fields)
    for name, image in zip(rules.image_fields, images, strict=True):
        _check_limits(image, f"/{name}", rules.limits)
    first = images[0]
    mask = None
    if "mask" in top:
        mask = _mask_plane(
            _decode(top, "mask", "", ("png", "jpeg", "webp")), first.size, "/mask", True
        )
    elif rules.kind in ("inpaint", "erase"):
        if "A" not in first.getbands():
            _fail("", "required key [mask] not found, and the image has no alpha channel")
        mask = ImageOps.invert(first.getchannel("A"))
    if mask is not None:
        grow = int(options.get("grow_mask", 5))  # type: ignore[call-overload]
        if grow:
            mask = mask.filter(ImageFilter.MaxFilter(2 * grow + 1))
    width, height = first.size
    if rules.kind == "outpaint":
        sides = [int(options.get(side, 0)) for side in ("left", "right", "up", "down")]  # type: ignore[call-overload]
        if not any(sides):
            _fail("", "at least one of left, right, up, down must be above 0")
        width, height = width + sides[0] + sides[1], height + sides[2] + sides[3]
    elif rules.kind == "fast_upscale":
        width, height = width * 4, height * 4
    elif rules.kind in ("creative_upscale", "conservative_upscale"):
        scale = max(1.0, min(4.0, 4096 / max(width, height)))
        width, height = round(width * scale), round(height * scale)
    elif rules.kind == "style_guide":
        width, height = ASPECT_RATIO_SIZES[str(top.get("aspect_ratio", "1:1"))]
    return EditJob(rules.kind, images, mask, prompt, width, height, 1, seed or None, fmt, options)


def validate_image_to_image(top: Mapping[str, object], prompt: str, seed: int | None,
                            fmt: ImageFormat, strength: float) -> EditJob:  # fmt: skip
    image = _decode(top, "image", "", ("png", "jpeg", "webp"))
    if min(image.size) < 64:
        _fail("/image", f"{image.size[0]}x{image.size[1]} is smaller than 64 pixels on a side")
    return EditJob(
        "image_to_image", (image,), None, prompt, *image.size, 1, seed, fmt, {"strength": strength}
    )


# ----- Nova Canvas / Titan edit tasks


def validate_canvas_edit(rules: CanvasRules, task: str, params: object, path: str) -> EditJob:
    """The params object of a Nova Canvas / Titan edit task."""
    text_keys = ("text", "negativeText")
    image_limits = InputLimits(320, rules.edit_max_side, 0, 4_194_304, 4.0)
    params = _object(params, path, (*text_keys, "image", "images", "similarityStrength",
                                    "maskImage", "maskPrompt", "outPaintingMode"))  # fmt: skip
    if task == "BACKGROUND_REMOVAL":
        _object(params, path, ("image",), ("image",))
        image = _decode(params, "image", path, ("png", "jpeg"))
        _check_limits(image, f"{path}/image", image_limits)
        return EditJob("remove_background", (image,), None, "", *image.size, 1, None, "png")
    if task == "IMAGE_VARIATION":
        _object(params, path, (*text_keys, "images", "similarityStrength"), ("images",))
        raw = params["images"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= rules.variation_images:
            _fail(f"{path}/images", f"expected 1 to {rules.variation_images} images")
        images = tuple(
            _decode({"image": item}, "image", f"{path}/images/{index}", ("png", "jpeg"))
            for index, item in enumerate(raw)
        )
        for index, image in enumerate(images):
            _check_limits(image, f"{path}/images/{index}", image_limits)
        similarity = _number(params, "similarityStrength", path, 0.2, 1.0)
        text = _string(params, "text", path, min_len=1, max_len=rules.text_max) or ""
        _string(params, "negativeText", path, min_len=1, max_len=rules.text_max)
        return EditJob(
            "variation", images, None, text, 0, 0, 1, None, "png",
            {"similarity": 0.7 if similarity is None else similarity},
        )  # fmt: skip
    extra = ("outPaintingMode",) if task == "OUTPAINTING" else ()
    _object(params, path, (*text_keys, "image", "maskImage", "maskPrompt", *extra), ("image",))
    if ("maskImage" in params) == ("maskPrompt" in params):
        _fail(path, "exactly one of [maskImage, maskPrompt] is required")
    _string(params, "outPaintingMode", path, enum=("DEFAULT", "PRECISE"))
    text = _string(params, "text", path, min_len=1, max_len=rules.text_max) or ""
    _string(params, "negativeText", path, min_len=1, max_len=rules.text_max)
    mask_prompt = _string(params, "maskPrompt", path, min_len=1, max_len=rules.text_max)
    image = _decode(params, "image", path, ("png", "jpeg"))
    _check_limits(image, f"{path}/image", image_limits)
    if mask_prompt is not None:
        mask = _centre_region(image.size)  # "finds" what the text names: the middle
    else:
        decoded = _decode(params, "maskImage", path, ("png", "jpeg"))
        mask = _mask_plane(decoded, image.size, f"{path}/maskImage", white_is_edit=False)
        mask = mask.point(lambda value: 255 if value >= 128 else 0)
    return EditJob("inpaint", (image,), mask, text or "background", *image.size, 1, None, "png")


_EDIT_CONFIG_KEYS = ("quality", "cfgScale", "seed", "numberOfImages")


def validate_edit(model: ImageModel, body: object) -> EditJob | None:
    """The edit a body asks for, validated; None when the body is a generation."""
    rules = model.rules
    if isinstance(rules, ServiceRules):
        return validate_service(rules, body)
    if isinstance(rules, StabilityRules):
        if not (rules.image_to_image and isinstance(body, dict)):
            return None
        if body.get("mode") != "image-to-image":
            return None
        generation = validate_stability(rules, body)  # every field, image included
        strength = _number(body, "strength", "", 0.0, 1.0)
        assert strength is not None  # required by validate_stability
        return validate_image_to_image(body, generation.prompt, generation.seed,
                                       generation.fmt, strength)  # fmt: skip
    if not isinstance(body, dict) or body.get("taskType") not in rules.editing_task_types:
        return None
    task = str(body["taskType"])
    if task == "VIRTUAL_TRY_ON":
        raise validation_error("taskType VIRTUAL_TRY_ON is not implemented by the emulator.")
    field_name = PARAMS_FIELD[task]
    config_key = () if task == "BACKGROUND_REMOVAL" else ("imageGenerationConfig",)
    top = _object(body, "", ("taskType", field_name, *config_key), required=(field_name,))
    job = validate_canvas_edit(rules, task, top[field_name], f"/{field_name}")
    if task == "BACKGROUND_REMOVAL":
        return job
    config = top.get("imageGenerationConfig", {})
    if task != "IMAGE_VARIATION":
        # The output has the input's size: width and height are not part of these tasks.
        _object(config, "/imageGenerationConfig", _EDIT_CONFIG_KEYS)
        config = {**config, "width": 1024, "height": 1024} if rules.sizes else config  # type: ignore[dict-item]
    width, height, count, seed = _canvas_config(rules, config)
    if task == "IMAGE_VARIATION":
        return replace(job, width=width, height=height, count=count, seed=seed)
    return replace(job, count=count, seed=seed)


# ----- outputs


def _centre_region(size: tuple[int, int]) -> Image.Image:
    width, height = size
    plane = Image.new("L", size, 0)
    plane.paste(255, (width // 4, height // 4, width * 3 // 4, height * 3 // 4))
    return plane


def edit_image(job: EditJob, seed: int) -> Image.Image:
    """The result of one edit (before encoding)."""
    first = job.images[0].convert("RGBA")
    width, height = job.width or first.width, job.height or first.height
    if job.kind in ("inpaint", "erase"):
        assert job.mask is not None
        if job.kind == "erase":
            fill = first.filter(ImageFilter.GaussianBlur(max(8, min(first.size) // 8)))
        else:
            fill = _picture(first.size, job.prompt, seed)
        return Image.composite(fill, first, job.mask)
    if job.kind in ("search_replace", "search_recolor"):
        region = _centre_region(first.size)
        if job.kind == "search_replace":
            fill = _picture(first.size, job.prompt, seed)
        else:
            r, g, b, a = first.split()
            fill = Image.merge("RGBA", (b, r, g, a))  # a visible recolouring
        return Image.composite(fill, first, region)
    if job.kind == "outpaint":
        canvas = _picture((width, height), job.prompt or "outpaint", seed)
        left, up = int(job.options.get("left", 0)), int(job.options.get("up", 0))  # type: ignore[call-overload]
        canvas.paste(first, (left, up))
        return canvas
    if job.kind == "remove_background":
        return _remove_background(first)
    if job.kind.endswith("upscale"):
        return first.resize((width, height), Image.Resampling.BICUBIC)
    if job.kind == "control":
        edges = first.convert("L").filter(ImageFilter.FIND_EDGES)
        return Image.composite(Image.new("RGBA", first.size, (0, 0, 0, 255)),
                               _picture(first.size, job.prompt, seed), edges)  # fmt: skip
    if job.kind == "style_guide":
        tint = Image.new("RGBA", (width, height), first.resize((1, 1)).getpixel((0, 0)))
        return Image.blend(_picture((width, height), job.prompt, seed), tint, 0.4)
    if job.kind == "style_transfer":
        style = job.images[1].convert("RGBA").resize(first.size)
        strength = float(job.options.get("style_strength", 1.0))  # type: ignore[arg-type]
        return Image.blend(first, style, 0.5 * strength)
    if job.kind == "image_to_image":
        strength = float(job.options["strength"])  # type: ignore[arg-type]
        return Image.blend(first, _picture(first.size, job.prompt or "image", seed), strength)
    # variation: the first image at the requested size, pulled towards a new picture
    base = first.resize((width, height))
    similarity = float(job.options.get("similarity", 0.7))  # type: ignore[arg-type]
    return Image.blend(
        base, _picture((width, height), job.prompt or "variation", seed), 1 - similarity
    )


def _picture(size: tuple[int, int], prompt: str, seed: int) -> Image.Image:
    data = render(size[0], size[1], prompt, seed, "png")
    return Image.open(io.BytesIO(data)).convert("RGBA")


def _remove_background(image: Image.Image) -> Image.Image:
    """Pixels close to the image's most common border colour become transparent."""
    width, height = image.size
    rgb = image.convert("RGB")
    border = [rgb.getpixel((x, 0)) for x in range(width)] + [
        rgb.getpixel((0, y)) for y in range(height)
    ]
    background = max(set(border), key=border.count)
    diff = ImageChops.difference(rgb, Image.new("RGB", image.size, background)).convert("L")
    alpha = diff.point(lambda value: 255 if value > 24 else 0)
    result = image.copy()
    result.putalpha(ImageChops.multiply(alpha, image.getchannel("A")))
    return result


_SAVE: Mapping[str, tuple[str, dict[str, int]]] = {
    "png": ("PNG", {"compress_level": 1}),
    "jpeg": ("JPEG", {"quality": 90}),
    "webp": ("WEBP", {"quality": 80, "method": 0}),
}


def encode(image: Image.Image, fmt: str, keep_alpha: bool) -> str:
    if fmt == "jpeg" or not keep_alpha:
        image = image.convert("RGB")
    out = io.BytesIO()
    encoder, options = _SAVE[fmt]
    image.save(out, encoder, **options)
    return base64.b64encode(out.getvalue()).decode()


def render_edit(job: EditJob, seed: int) -> str:
    """One finished edit, base64 in the job's format; alpha kept where the input had it."""
    result = edit_image(job, seed)
    keep_alpha = job.kind == "remove_background" or "A" in job.images[0].getbands()
    return encode(result, job.fmt, keep_alpha)
