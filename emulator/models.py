"""What each emulated Bedrock image model accepts: a declarative rule table plus pure checks.

Nothing here does I/O or keeps state, so every rule is unit-testable without a server.
Validation is deliberately strict: a request the real service would refuse must be refused
here too, otherwise the service's tests pass against the emulator and fail against AWS.

Messages follow the JSON-schema style Bedrock uses for these models ("Malformed input
request: #/path: problem, please reformat your input and try again."), so every message
names the offending field by its JSON pointer.

The limits are written here again, from the Bedrock reference, instead of being imported
from `service/models/`: the emulator is the independent check of the service's tables, and
a shared table would let one mistake pass both.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from PIL import Image

# --------------------------------------------------------------------------- errors


class BedrockError(Exception):
    """An error answered on the wire as Bedrock does: status, x-amzn-ErrorType, message."""

    def __init__(
        self, status: int, code: str, message: str, extra: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # Extra members of the error shape, e.g. ModelErrorException.originalStatusCode.
        self.extra: dict[str, object] = dict(extra or {})


def validation_error(message: str) -> BedrockError:
    return BedrockError(400, "ValidationException", message)


def _fail(path: str, problem: str) -> NoReturn:
    raise validation_error(
        f"Malformed input request: #{path}: {problem}, please reformat your input and try again."
    )


# --------------------------------------------------------------------------- the rule table

ASPECT_RATIO_SIZES: dict[str, tuple[int, int]] = {
    # Stability-API 1-megapixel conventions per aspect ratio (reference section 4.3).
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}

NOVA_STYLES = frozenset(
    {
        "3D_ANIMATED_FAMILY_FILM",
        "DESIGN_SKETCH",
        "FLAT_VECTOR_ILLUSTRATION",
        "GRAPHIC_NOVEL_ILLUSTRATION",
        "MAXIMALISM",
        "MIDCENTURY_RETRO",
        "PHOTOREALISM",
        "SOFT_DIGITAL_PAINTING",
    }
)

# The 25 width x height pairs Titan Image Generator accepts (v1 and v2 share the table).
TITAN_SIZES = frozenset(
    {
        (1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576),
        (1152, 768), (576, 384), (768, 1280), (384, 640), (1280, 768),
        (640, 384), (896, 1152), (448, 576), (1152, 896), (576, 448),
        (768, 1408), (384, 704), (1408, 768), (704, 384), (640, 1408),
        (320, 704), (1408, 640), (704, 320), (1152, 640), (1173, 640),
    }
)  # fmt: skip

# Every taskType of the Titan/Nova envelope, with the params object that belongs to it.
PARAMS_FIELD: dict[str, str] = {
    "TEXT_IMAGE": "textToImageParams",
    "COLOR_GUIDED_GENERATION": "colorGuidedGenerationParams",
    "IMAGE_VARIATION": "imageVariationParams",
    "INPAINTING": "inPaintingParams",
    "OUTPAINTING": "outPaintingParams",
    "BACKGROUND_REMOVAL": "backgroundRemovalParams",
    "VIRTUAL_TRY_ON": "virtualTryOnParams",
}


@dataclass(frozen=True)
class CanvasRules:
    """Body rules of the Titan Image Generator envelope, which Nova Canvas inherited."""

    # Generation task types (text in, image out).
    task_types: frozenset[str]
    # Task types that edit input images (emulator/edits.py).
    editing_task_types: frozenset[str]
    text_max: int
    # Empty means the model has no `style` field at all (Titan), so sending one is extraneous.
    styles: frozenset[str]
    # TEXT_IMAGE accepts conditionImage / controlMode / controlStrength (Nova, Titan v2).
    condition_image: bool
    # None: Nova's free-size rule; otherwise the exact (width, height) pairs allowed.
    sizes: frozenset[tuple[int, int]] | None
    seed_max: int = 2_147_483_646
    edit_max_side: int = 4096  # input images of edit tasks
    variation_images: int = 5  # IMAGE_VARIATION's images


@dataclass(frozen=True)
class StabilityRules:
    output_formats: tuple[str, ...]
    # Accepts `mode`, `image` and `strength` (only SD3.5 Large documents image-to-image).
    image_to_image: bool
    seed_max: int = 4_294_967_294


STYLE_PRESETS = frozenset(
    {
        "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
        "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
        "origami", "photographic", "pixel-art", "tile-texture",
    }
)  # fmt: skip
STABILITY_SEED_MAX = 4_294_967_294

Kind = Literal[
    "inpaint", "outpaint", "search_replace", "search_recolor", "erase", "remove_background",
    "creative_upscale", "conservative_upscale", "fast_upscale", "control", "style_guide",
    "style_transfer", "image_to_image", "variation",
]  # fmt: skip


@dataclass(frozen=True)
class InputLimits:
    min_side: int = 64
    max_side: int | None = None
    min_pixels: int = 0
    max_pixels: int = 9_437_184
    max_aspect: float | None = 2.5


@dataclass(frozen=True)
class ServiceRules:
    """One Stability Image Service: its body keys and limits."""

    kind: Kind
    prompt_required: bool
    keys: frozenset[str]  # accepted body keys beyond image, output_format and seed
    formats: tuple[str, ...] = ("jpeg", "png", "webp")
    limits: InputLimits = field(default_factory=InputLimits)
    image_fields: tuple[str, ...] = ("image",)
    seed_max: int = STABILITY_SEED_MAX


_SERVICE_COMMON = frozenset({"negative_prompt", "style_preset"})
SERVICES: Mapping[str, ServiceRules] = {
    "stability.stable-image-inpaint-v1:0": ServiceRules(
        "inpaint", True, _SERVICE_COMMON | {"prompt", "mask", "grow_mask"}
    ),
    "stability.stable-outpaint-v1:0": ServiceRules(
        "outpaint", False, _SERVICE_COMMON | {"prompt", "left", "right", "up", "down", "creativity"}
    ),
    "stability.stable-image-search-replace-v1:0": ServiceRules(
        "search_replace", True, _SERVICE_COMMON | {"prompt", "search_prompt", "grow_mask"}
    ),
    "stability.stable-image-search-recolor-v1:0": ServiceRules(
        "search_recolor", True, _SERVICE_COMMON | {"prompt", "select_prompt", "grow_mask"}
    ),
    "stability.stable-image-erase-object-v1:0": ServiceRules(
        "erase", False, frozenset({"mask", "grow_mask"})
    ),
    "stability.stable-image-remove-background-v1:0": ServiceRules(
        "remove_background", False, frozenset(), formats=("png", "webp")
    ),
    "stability.stable-creative-upscale-v1:0": ServiceRules(
        "creative_upscale", True, _SERVICE_COMMON | {"prompt", "creativity"},
        limits=InputLimits(max_pixels=1_048_576),
    ),
    "stability.stable-conservative-upscale-v1:0": ServiceRules(
        "conservative_upscale", True, frozenset({"prompt", "negative_prompt", "creativity"})
    ),
    "stability.stable-fast-upscale-v1:0": ServiceRules(
        "fast_upscale", False, frozenset(),
        limits=InputLimits(min_side=32, max_side=1536, min_pixels=1024, max_pixels=1_048_576),
    ),
    "stability.stable-image-control-sketch-v1:0": ServiceRules(
        "control", True, _SERVICE_COMMON | {"prompt", "control_strength"}
    ),
    "stability.stable-image-control-structure-v1:0": ServiceRules(
        "control", True, _SERVICE_COMMON | {"prompt", "control_strength"}
    ),
    "stability.stable-image-style-guide-v1:0": ServiceRules(
        "style_guide", True, _SERVICE_COMMON | {"prompt", "fidelity", "aspect_ratio"}
    ),
    "stability.stable-style-transfer-v1:0": ServiceRules(
        "style_transfer", False,
        frozenset({"prompt", "negative_prompt", "composition_fidelity", "style_strength",
                   "change_strength"}),
        image_fields=("init_image", "style_image"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Lifecycle:
    status: Literal["ACTIVE", "LEGACY"]
    end_of_life: str | None = None  # ISO 8601
    legacy_since: str | None = None  # ISO 8601
    # Refused as end of life in the aws-2026-12 mode (the default mode still serves it).
    retired: bool = False
    listed: bool = True  # gone from ListFoundationModels in the aws-2026-12 mode when False


# EMULATOR_LIFECYCLE: "product-page" serves every model of the product page (reporting each
# one's real lifecycle); "aws-2026-12" answers as AWS did in December 2026.
LIFECYCLE_MODES = ("product-page", "aws-2026-12")
US_PROFILE_REGIONS = ("us-east-1", "us-east-2", "us-west-2")


@dataclass(frozen=True)
class ImageModel:
    model_id: str
    name: str  # BrandedName: at most 20 characters
    provider: str  # BrandedName: at most 20 characters
    input_modalities: tuple[str, ...]
    lifecycle: Lifecycle
    rules: CanvasRules | StabilityRules | ServiceRules
    customizations: tuple[str, ...] = ()
    # Served only through cross-region inference profiles (`us.` ids): a bare id is invalid.
    profile_only: bool = False
    # Where the aws-2026-12 mode serves it on demand (profile-only models: US_PROFILE_REGIONS).
    regions: tuple[str, ...] = ("us-west-2",)


_NOVA_EDITING = frozenset(
    {"IMAGE_VARIATION", "INPAINTING", "OUTPAINTING", "BACKGROUND_REMOVAL", "VIRTUAL_TRY_ON"}
)
_TITAN_V1_EDITING = frozenset({"IMAGE_VARIATION", "INPAINTING", "OUTPAINTING"})

_CORE_ULTRA = StabilityRules(output_formats=("jpeg", "png"), image_to_image=False)

MODELS: dict[str, ImageModel] = {
    m.model_id: m
    for m in (
        ImageModel(
            model_id="amazon.nova-canvas-v1:0",
            name="Nova Canvas",
            provider="Amazon",
            input_modalities=("TEXT", "IMAGE"),
            lifecycle=Lifecycle(
                "LEGACY",
                end_of_life="2026-09-30T00:00:00Z",
                legacy_since="2026-03-30T00:00:00Z",
                retired=True,
            ),
            regions=("us-east-1", "eu-west-1", "ap-northeast-1"),
            rules=CanvasRules(
                task_types=frozenset({"TEXT_IMAGE", "COLOR_GUIDED_GENERATION"}),
                editing_task_types=_NOVA_EDITING,
                text_max=1024,
                styles=NOVA_STYLES,
                condition_image=True,
                sizes=None,
                # AWS examples cap Nova's seed at 858,993,459; the docs say 2,147,483,646.
                # We follow the docs (the wider range) so valid documented seeds pass.
            ),
        ),
        ImageModel(
            model_id="amazon.titan-image-generator-v1",
            name="Titan Image G1",
            provider="Amazon",
            input_modalities=("TEXT", "IMAGE"),
            lifecycle=Lifecycle("LEGACY", retired=True, listed=False),
            regions=("us-east-1", "us-west-2"),
            customizations=("FINE_TUNING",),
            rules=CanvasRules(
                task_types=frozenset({"TEXT_IMAGE"}),
                editing_task_types=_TITAN_V1_EDITING,
                text_max=512,
                styles=frozenset(),
                condition_image=False,
                sizes=TITAN_SIZES,
                edit_max_side=1408,
                variation_images=1,
            ),
        ),
        ImageModel(
            model_id="amazon.titan-image-generator-v2:0",
            name="Titan Image G1 v2",
            provider="Amazon",
            input_modalities=("TEXT", "IMAGE"),
            lifecycle=Lifecycle("LEGACY", end_of_life="2026-06-30T00:00:00Z", retired=True),
            regions=("us-east-1", "us-west-2"),
            customizations=("FINE_TUNING",),
            rules=CanvasRules(
                task_types=frozenset({"TEXT_IMAGE", "COLOR_GUIDED_GENERATION"}),
                editing_task_types=_TITAN_V1_EDITING | {"BACKGROUND_REMOVAL"},
                text_max=512,
                styles=frozenset(),
                condition_image=True,
                sizes=TITAN_SIZES,
                edit_max_side=1408,
            ),
        ),
        ImageModel(
            model_id="stability.sd3-5-large-v1:0",
            name="SD3.5 Large",
            provider="Stability AI",
            input_modalities=("TEXT", "IMAGE"),
            lifecycle=Lifecycle("ACTIVE"),
            rules=StabilityRules(output_formats=("jpeg", "png", "webp"), image_to_image=True),
        ),
        ImageModel(
            model_id="stability.stable-image-core-v1:0",
            name="Stable Image Core",
            provider="Stability AI",
            input_modalities=("TEXT",),
            lifecycle=Lifecycle("LEGACY"),
            rules=_CORE_ULTRA,
        ),
        ImageModel(
            model_id="stability.stable-image-core-v1:1",
            name="Stable Image Core",
            provider="Stability AI",
            input_modalities=("TEXT",),
            lifecycle=Lifecycle("ACTIVE"),
            rules=_CORE_ULTRA,
        ),
        ImageModel(
            model_id="stability.stable-image-ultra-v1:0",
            name="Stable Image Ultra",
            provider="Stability AI",
            input_modalities=("TEXT",),
            lifecycle=Lifecycle("LEGACY"),
            rules=_CORE_ULTRA,
        ),
        ImageModel(
            model_id="stability.stable-image-ultra-v1:1",
            name="Stable Image Ultra",
            provider="Stability AI",
            input_modalities=("TEXT",),
            lifecycle=Lifecycle("ACTIVE"),
            rules=_CORE_ULTRA,
        ),
    )
}

# Catalog names of the image services (BrandedName: at most 20 characters).
_SERVICE_NAMES = {
    "stability.stable-image-inpaint-v1:0": "Inpaint",
    "stability.stable-outpaint-v1:0": "Outpaint",
    "stability.stable-image-search-replace-v1:0": "Search and Replace",
    "stability.stable-image-search-recolor-v1:0": "Search and Recolor",
    "stability.stable-image-erase-object-v1:0": "Erase Object",
    "stability.stable-image-remove-background-v1:0": "Remove Background",
    "stability.stable-creative-upscale-v1:0": "Creative Upscale",
    "stability.stable-conservative-upscale-v1:0": "Conservative Upscale",
    "stability.stable-fast-upscale-v1:0": "Fast Upscale",
    "stability.stable-image-control-sketch-v1:0": "Control Sketch",
    "stability.stable-image-control-structure-v1:0": "Control Structure",
    "stability.stable-image-style-guide-v1:0": "Style Guide",
    "stability.stable-style-transfer-v1:0": "Style Transfer",
}
MODELS.update(
    {
        model_id: ImageModel(
            model_id=model_id,
            name=_SERVICE_NAMES[model_id],
            provider="Stability AI",
            input_modalities=("TEXT", "IMAGE"),
            lifecycle=Lifecycle("ACTIVE"),
            rules=rules,
            profile_only=True,
            regions=US_PROFILE_REGIONS,
        )
        for model_id, rules in SERVICES.items()
    }
)

# --------------------------------------------------------------------------- model ids

_PROFILE_PREFIXES = ("us.", "eu.", "apac.")
_FOUNDATION_ARN = re.compile(r"arn:aws(?:-[a-z-]+)?:bedrock:[a-z0-9-]{1,20}::foundation-model/(.+)")
_PROFILE_ARN = re.compile(
    r"arn:aws(?:-[a-z-]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:inference-profile/(.+)"
)


def catalog_model(identifier: str) -> ImageModel | None:
    """The model behind a GetFoundationModel identifier: a base id or foundation-model ARN."""
    match = _FOUNDATION_ARN.fullmatch(identifier)
    return MODELS.get(match.group(1) if match else identifier)


def resolve_model(identifier: str) -> ImageModel | None:
    """The model behind a base id, foundation-model ARN, profile id or profile ARN.

    `identifier` must already be URL-decoded (boto3 sends `:` as %3A and `/` as %2F).
    """
    if match := _FOUNDATION_ARN.fullmatch(identifier):
        return MODELS.get(match.group(1))
    profile_arn = _PROFILE_ARN.fullmatch(identifier)
    profile = profile_arn.group(1) if profile_arn else identifier
    for prefix in _PROFILE_PREFIXES:
        if profile.startswith(prefix):
            return MODELS.get(profile.removeprefix(prefix))
    # An inference-profile ARN always names a (prefixed) profile, never a bare model id.
    return None if profile_arn else MODELS.get(identifier)


# --------------------------------------------------------------------------- request headers

_GUARDRAIL_ID = re.compile(
    r"|[a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+"
)
_GUARDRAIL_VERSION = re.compile(r"|[1-9][0-9]{0,7}|DRAFT")
_PROJECT_ID = re.compile(
    r"[a-zA-Z0-9_-]+|arn:aws(|-us-gov|-cn|-iso|-iso-b|-iso-f|-eusc):bedrock:[0-9a-z-]{1,20}"
    r":[0-9]{12}:project/[a-zA-Z0-9_-]+"
)
# header (lower case) -> (boto3 member name, allowed values)
_HEADER_ENUMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "x-amzn-bedrock-trace": ("trace", ("ENABLED", "DISABLED", "ENABLED_FULL")),
    "x-amzn-bedrock-performanceconfig-latency": (
        "performanceConfigLatency",
        ("standard", "optimized"),
    ),
    "x-amzn-bedrock-service-tier": ("serviceTier", ("priority", "default", "flex", "reserved")),
}
GUARDRAIL_BODY_KEY = "amazon-bedrock-guardrailConfig"


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _constraint_error(value: str, member: str, constraint: str) -> BedrockError:
    # The wording AWS uses for violations of modeled constraints.
    return validation_error(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must {constraint}"
    )


def validate_invoke_headers(headers: Mapping[str, str]) -> bool:
    """Check InvokeModel's modeled headers (lower-case keys); return whether a guardrail is on.

    botocore checks none of these enums or patterns client-side, so the server must.
    """
    for header, (member, allowed) in _HEADER_ENUMS.items():
        value = headers.get(header)
        if value is not None and value not in allowed:
            raise _constraint_error(
                value, member, f"satisfy enum value set: [{', '.join(allowed)}]"
            )
    content_type = headers.get("content-type")
    # boto3 omits Content-Type unless the caller sets it, so only a wrong one is refused.
    if content_type is not None and _media_type(content_type) != "application/json":
        raise validation_error(f"Content type {content_type} is not supported by this model.")
    accept = headers.get("accept")
    if accept is not None and not {"application/json", "*/*", "application/*"} & {
        _media_type(part) for part in accept.split(",")
    }:
        raise validation_error(f"Accept type {accept} is not supported by this model.")
    guardrail_id = headers.get("x-amzn-bedrock-guardrailidentifier", "")
    guardrail_version = headers.get("x-amzn-bedrock-guardrailversion", "")
    pattern = "satisfy regular expression pattern"
    if len(guardrail_id) > 2048 or not _GUARDRAIL_ID.fullmatch(guardrail_id):
        raise _constraint_error(guardrail_id, "guardrailIdentifier", pattern)
    if not _GUARDRAIL_VERSION.fullmatch(guardrail_version):
        raise _constraint_error(guardrail_version, "guardrailVersion", pattern)
    if guardrail_id and not guardrail_version:
        raise validation_error("Guardrail version is required when a guardrail identifier is set.")
    project = headers.get("x-amzn-bedrock-projectidentifier")
    if project is not None and (len(project) > 2048 or not _PROJECT_ID.fullmatch(project)):
        raise _constraint_error(project, "projectIdentifier", pattern)
    metadata = headers.get("x-amzn-bedrock-request-metadata")
    if metadata is not None:
        _check_request_metadata(metadata)
    return bool(guardrail_id)


def _check_request_metadata(raw: str) -> None:
    if len(raw) > 8500:
        raise validation_error("requestMetadata must be at most 8500 characters.")
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise validation_error("requestMetadata must be a JSON object of string values.")


def strip_guardrail_config(body: object, guardrail_enabled: bool) -> object:
    """Remove the body's guardrail block, which Bedrock consumes before the model sees it."""
    if not isinstance(body, dict) or GUARDRAIL_BODY_KEY not in body:
        return body
    if not guardrail_enabled:
        raise validation_error(
            f"The request body contains '{GUARDRAIL_BODY_KEY}' but no guardrail identifier "
            "and version were provided."
        )
    return {key: value for key, value in body.items() if key != GUARDRAIL_BODY_KEY}


# --------------------------------------------------------------------------- body checks


ImageFormat = Literal["png", "jpeg", "webp"]
_FORMATS: dict[str, ImageFormat] = {"png": "png", "jpeg": "jpeg", "webp": "webp"}


@dataclass(frozen=True)
class Generation:
    """What a valid request asks the emulator to render."""

    prompt: str
    width: int
    height: int
    count: int
    seed: int | None  # None: pick a random seed per call
    fmt: ImageFormat


def _json_type(value: object) -> str:
    # JSON type names in the style of the schema messages above.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "BigDecimal"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "JSONArray"
    return "JSONObject"


def _object(
    value: object, path: str, allowed: Collection[str], required: Collection[str] = ()
) -> dict[str, object]:
    if not isinstance(value, dict):
        _fail(path, f"expected type: JSONObject, found: {_json_type(value)}")
    for key in value:
        if key not in allowed:
            _fail(path, f"extraneous key [{key}] is not permitted")
    for key in required:
        if key not in value:
            _fail(path, f"required key [{key}] not found")
    return value


def _string(
    obj: Mapping[str, object],
    key: str,
    path: str,
    *,
    min_len: int = 0,
    max_len: int | None = None,
    enum: Collection[str] | None = None,
) -> str | None:
    if key not in obj:
        return None
    value, where = obj[key], f"{path}/{key}"
    if not isinstance(value, str):
        _fail(where, f"expected type: String, found: {_json_type(value)}")
    if enum is not None and value not in enum:
        _fail(where, f"{value} is not a valid enum value")
    if len(value) < min_len:
        _fail(where, f"expected minLength: {min_len}, actual: {len(value)}")
    if max_len is not None and len(value) > max_len:
        _fail(where, f"expected maxLength: {max_len}, actual: {len(value)}")
    return value


def _integer(obj: Mapping[str, object], key: str, path: str, low: int, high: int) -> int | None:
    if key not in obj:
        return None
    value, where = obj[key], f"{path}/{key}"
    # bool is an int in Python but not in JSON; 5.0 is a number but not an integer.
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(where, f"expected type: Integer, found: {_json_type(value)}")
    _check_range(where, value, low, high)
    return value


def _number(
    obj: Mapping[str, object], key: str, path: str, low: float, high: float
) -> float | None:
    if key not in obj:
        return None
    value, where = obj[key], f"{path}/{key}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(where, f"expected type: Number, found: {_json_type(value)}")
    _check_range(where, value, low, high)
    return float(value)


def _check_range(where: str, value: float, low: float, high: float) -> None:
    if value < low:
        _fail(where, f"{value} is not greater or equal to {low}")
    if value > high:
        _fail(where, f"{value} is not less or equal to {high}")


def _image(
    obj: Mapping[str, object], key: str, path: str, formats: Collection[str]
) -> tuple[int, int] | None:
    """Check a base64 input image; return its size."""
    if key not in obj:
        return None
    value, where = obj[key], f"{path}/{key}"
    if not isinstance(value, str):
        _fail(where, f"expected type: String, found: {_json_type(value)}")
    try:
        data = base64.b64decode(value, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            fmt, size = (image.format or "").lower(), image.size
    # binascii.Error is a ValueError; unreadable images raise OSError.
    except (ValueError, OSError, Image.DecompressionBombError):
        _fail(where, "is not a base64-encoded image")
    if fmt not in formats:
        _fail(where, f"image format {fmt} is not one of {', '.join(sorted(formats))}")
    return size


# ----- Nova Canvas and Titan Image Generator

_CANVAS_CONFIG_KEYS = ("width", "height", "quality", "cfgScale", "seed", "numberOfImages")


def validate_canvas(model_id: str, rules: CanvasRules, body: object) -> Generation:
    top = _object(body, "", allowed=("taskType", *PARAMS_FIELD.values(), "imageGenerationConfig"))
    task = _string(top, "taskType", "", enum=PARAMS_FIELD)
    if task is None:
        _fail("", "required key [taskType] not found")
    # Edit task types are validated by emulator/edits.py before this point.
    if task not in rules.task_types:
        raise validation_error(f"taskType {task} is not supported by model {model_id}.")
    field = PARAMS_FIELD[task]
    # A params object of another task type is as extraneous as any unknown key.
    _object(top, "", allowed=("taskType", field, "imageGenerationConfig"), required=(field,))
    text = _canvas_params(rules, task, top[field], f"/{field}")
    width, height, count, seed = _canvas_config(rules, top.get("imageGenerationConfig", {}))
    return Generation(text, width, height, count, seed, "png")


def _canvas_params(rules: CanvasRules, task: str, value: object, path: str) -> str:
    allowed = ["text", "negativeText"]
    required = ["text"]
    if task == "COLOR_GUIDED_GENERATION":
        allowed += ["colors", "referenceImage"]
        required += ["colors"]
    else:  # TEXT_IMAGE
        if rules.styles:
            allowed.append("style")
        if rules.condition_image:
            allowed += ["conditionImage", "controlMode", "controlStrength"]
    params = _object(value, path, allowed, required)
    text = _string(params, "text", path, min_len=1, max_len=rules.text_max)
    _string(params, "negativeText", path, min_len=1, max_len=rules.text_max)
    _string(params, "style", path, enum=rules.styles)
    _image(params, "conditionImage", path, ("png", "jpeg"))
    _string(params, "controlMode", path, enum=("CANNY_EDGE", "SEGMENTATION"))
    _number(params, "controlStrength", path, 0.0, 1.0)
    _image(params, "referenceImage", path, ("png", "jpeg"))
    if "colors" in params:
        _colors(params["colors"], f"{path}/colors")
    assert text is not None  # required above
    return text


_HEX_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")


def _colors(value: object, path: str) -> None:
    if not isinstance(value, list):
        _fail(path, f"expected type: JSONArray, found: {_json_type(value)}")
    if not 1 <= len(value) <= 10:
        bound = "minimum item count: 1" if not value else "maximum item count: 10"
        _fail(path, f"expected {bound}, found: {len(value)}")
    for index, color in enumerate(value):
        if not isinstance(color, str):
            _fail(f"{path}/{index}", f"expected type: String, found: {_json_type(color)}")
        if not _HEX_COLOR.fullmatch(color):
            _fail(f"{path}/{index}", f"string [{color}] does not match pattern ^#[0-9A-Fa-f]{{6}}$")


def _canvas_config(rules: CanvasRules, value: object) -> tuple[int, int, int, int | None]:
    path = "/imageGenerationConfig"
    config = _object(value, path, _CANVAS_CONFIG_KEYS)
    # Nova's sides are bounded by its own rule below; Titan's by the pair table.
    width = _integer(config, "width", path, 0, 4096)
    height = _integer(config, "height", path, 0, 4096)
    _string(config, "quality", path, enum=("standard", "premium"))
    _number(config, "cfgScale", path, 1.1, 10.0)
    seed = _integer(config, "seed", path, 0, rules.seed_max)
    count = _integer(config, "numberOfImages", path, 1, 5)
    width, height = width or 1024, height or 1024  # 0 already failed the checks above
    if rules.sizes is None:
        _check_nova_size(width, height)
    elif (width, height) not in rules.sizes:
        _fail(path, f"{width}x{height} is not a supported width x height pair")
    return width, height, count or 1, seed


NOVA_MAX_PIXELS = 4_194_304  # 2048 x 2048


def _check_nova_size(width: int, height: int) -> None:
    path = "/imageGenerationConfig"
    for name, side in (("width", width), ("height", height)):
        if not 320 <= side <= 4096:
            _fail(f"{path}/{name}", f"{side} is not between 320 and 4096")
        if side % 16:
            _fail(f"{path}/{name}", f"{side} is not a multiple of 16")
    if not 1 / 4 <= width / height <= 4:
        _fail(path, f"aspect ratio of {width}x{height} is outside 1:4 to 4:1")
    if width * height > NOVA_MAX_PIXELS:
        _fail(path, f"{width}x{height} has more than {NOVA_MAX_PIXELS} pixels")


# ----- Stability AI


def validate_stability(rules: StabilityRules, body: object) -> Generation:
    allowed = ["prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"]
    if rules.image_to_image:
        allowed += ["mode", "image", "strength"]
    top = _object(body, "", allowed, required=("prompt",))
    prompt = _string(top, "prompt", "", min_len=1, max_len=10_000)
    assert prompt is not None  # required above
    _string(top, "negative_prompt", "", max_len=10_000)
    ratio = _string(top, "aspect_ratio", "", enum=ASPECT_RATIO_SIZES) or "1:1"
    seed = _integer(top, "seed", "", 0, rules.seed_max)
    fmt = _FORMATS[_string(top, "output_format", "", enum=rules.output_formats) or "png"]
    mode = _string(top, "mode", "", enum=("text-to-image", "image-to-image")) or "text-to-image"
    if mode == "text-to-image":
        for key in ("image", "strength"):
            if key in top:
                _fail(f"/{key}", "is only permitted with mode image-to-image")
        width, height = ASPECT_RATIO_SIZES[ratio]
    else:
        if "aspect_ratio" in top:
            _fail("/aspect_ratio", "is only permitted with mode text-to-image")
        for key in ("image", "strength"):
            if key not in top:
                _fail("", f"required key [{key}] not found (mode image-to-image)")
        _number(top, "strength", "", 0.0, 1.0)
        size = _image(top, "image", "", ("png", "jpeg", "webp"))
        assert size is not None  # required above
        if min(size) < 64:
            _fail("/image", f"{size[0]}x{size[1]} is smaller than 64 pixels on a side")
        width, height = size
    # Seed 0 means "random" for Stability, the same as leaving it out.
    return Generation(prompt, width, height, 1, seed or None, fmt)


def validate_body(model: ImageModel, body: object) -> Generation:
    """Validate a parsed InvokeModel body for `model`; raise ValidationException on a violation."""
    if isinstance(model.rules, CanvasRules):
        return validate_canvas(model.model_id, model.rules, body)
    if isinstance(model.rules, ServiceRules):  # edits only: emulator/edits.py answers these
        raise validation_error(f"{model.model_id} edits images; it does not generate them.")
    return validate_stability(model.rules, body)


def prompt_texts(body: object) -> list[str]:
    """Every prompt text in a body, wherever the model keeps it; used to find fault markers."""
    if not isinstance(body, dict):
        return []
    found = [body.get("prompt")]
    found += [params.get("text") for params in body.values() if isinstance(params, dict)]
    return [text for text in found if isinstance(text, str)]
