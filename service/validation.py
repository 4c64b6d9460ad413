"""Model-independent checks of an `ImageGenerationRequest` (both faces go through here).

Each rule names the parameter it guards, so a bad request gets a 400 that says what to fix.
Model-specific rules (sizes, styles, extras) live in the adapters under `service/models/`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from imagegen.v1 import images_pb2 as pb
from service.errors import invalid_param
from service.models.base import OUTPUT_FORMATS

MAX_N = 10
MAX_PARTIAL_IMAGES = 3
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")
_FORMAT_ALIASES = {"jpg": "jpeg"}
RESPONSE_FORMATS = ("url", "b64_json")

# X-Amzn-Bedrock-* header values (case-insensitive) -> boto3 invoke_model keyword values.
TRACE_VALUES = {"disabled": "DISABLED", "enabled": "ENABLED", "enabled_full": "ENABLED_FULL"}
SERVICE_TIERS = ("priority", "default", "flex", "reserved")
LATENCIES = ("standard", "optimized")
_GUARDRAIL_ID = re.compile(
    r"^(?:[a-z0-9]+|arn:aws(?:-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+)$"
)
_GUARDRAIL_VERSION = re.compile(r"^(?:[1-9][0-9]{0,7}|DRAFT)$")
# Deepest nesting of objects and arrays accepted in a request body (extras included); the
# deepest Bedrock body of any model is 3 levels, and deeper trees only cost recursion.
MAX_JSON_DEPTH = 32
# Most values (object members and array items, all levels) in one body: no model takes more
# than a few dozen, while millions of them in a few MiB would keep the service converting
# them (to protobuf and back) for many seconds. Base64 images are one value each.
MAX_JSON_VALUES = 100_000


@dataclass(frozen=True)
class CommonParams:
    """The request's model-independent options, normalized; `None` = model default."""

    prompt: str
    model: str
    n: int
    size: tuple[int, int] | None
    quality: str | None
    style: str | None
    response_format: str
    output_format: str
    output_compression: int
    partial_images: int
    extras: dict[str, Any]
    bedrock_options: dict[str, str]
    user: str


def check_json_tree(value: Any, param: str = "") -> None:
    """Refuse text that no model (nor protobuf) can take, and trees too deep or too large.

    Strings may hold lone surrogates (JSON's "\\ud800" escape, or bytes that were not
    UTF-8, decoded with surrogateescape) or NUL bytes: a 400 naming the field. Walks
    without recursion, so a deep tree cannot exhaust the stack.
    """
    pending: list[tuple[Any, str, int]] = [(value, param, 0)]
    values = 0
    while pending:
        node, path, depth = pending.pop()
        if isinstance(node, str):
            _check_text(node, path)
        elif isinstance(node, float) and not math.isfinite(node):
            # Python's JSON parser takes NaN/Infinity; JSON (and protobuf's Struct) does not.
            raise invalid_param(
                _printable(path) or "body", f"'{_printable(path)}' must be a finite number."
            )
        elif isinstance(node, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise invalid_param(
                    _printable(re.split(r"[.\[]", path)[0]) or "body",
                    f"The request nests objects or arrays more than {MAX_JSON_DEPTH} levels deep.",
                    code="nesting_too_deep",
                )
            values += len(node)
            if values > MAX_JSON_VALUES:
                raise invalid_param(
                    _printable(re.split(r"[.\[]", path)[0]) or "body",
                    f"The request holds more than {MAX_JSON_VALUES} values (object members and "
                    "array items); no model takes that many.",
                    code="too_many_values",
                )
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str):
                    _check_text(key, f"{path}.{key}" if path else key)
                name = f"{path}[{key}]" if isinstance(key, int) else (
                    f"{path}.{key}" if path else key)  # fmt: skip
                pending.append((child, name, depth + 1))


def _printable(name: str) -> str:
    """A field name fit for an error message (it may itself hold the bad characters)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _check_text(text: str, param: str) -> None:
    name = _printable(param) or "body"
    if "\x00" in text:
        raise invalid_param(name, f"'{name}' contains a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid_param(
            name,
            f"'{name}' is not valid Unicode text: it holds bytes that are not UTF-8 or a "
            "lone surrogate escape (such as \\ud800).",
        ) from None


def _text(value: str) -> str | None:
    value = value.strip()
    return value.lower() if value else None


def parse_size(size: str) -> tuple[int, int] | None:
    if not size.strip() or size.strip().lower() == "auto":
        return None
    match = _SIZE.match(size)
    if not match or 0 in (int(match.group(1)), int(match.group(2))):
        raise invalid_param(
            "size",
            f"Invalid size {size!r}: use 'WIDTHxHEIGHT' (for example '1024x1024') or 'auto'.",
        )
    return int(match.group(1)), int(match.group(2))


def bedrock_options(options: pb.BedrockOptions) -> dict[str, str]:
    """Validate the X-Amzn-Bedrock-* options; returns InvokeModel keyword arguments."""
    kwargs: dict[str, str] = {}
    header = "X-Amzn-Bedrock-"
    if options.trace:
        trace = TRACE_VALUES.get(options.trace.strip().lower())
        if trace is None:
            raise invalid_param(f"{header}Trace", _choices(f"{header}Trace", TRACE_VALUES))
        kwargs["trace"] = trace
    if options.service_tier:
        tier = options.service_tier.strip().lower()
        if tier not in SERVICE_TIERS:
            raise invalid_param(
                f"{header}Service-Tier", _choices(f"{header}Service-Tier", SERVICE_TIERS)
            )
        kwargs["serviceTier"] = tier
    if options.performance_latency:
        latency = options.performance_latency.strip().lower()
        if latency not in LATENCIES:
            name = f"{header}PerformanceConfig-Latency"
            raise invalid_param(name, _choices(name, LATENCIES))
        kwargs["performanceConfigLatency"] = latency
    guardrail, version = options.guardrail_identifier.strip(), options.guardrail_version.strip()
    if guardrail or version:
        if not guardrail or not version:
            missing = "GuardrailIdentifier" if not guardrail else "GuardrailVersion"
            raise invalid_param(
                f"{header}{missing}",
                f"{header}GuardrailIdentifier and {header}GuardrailVersion go together; "
                f"{header}{missing} is missing.",
            )
        if not _GUARDRAIL_ID.match(guardrail):
            raise invalid_param(
                f"{header}GuardrailIdentifier", f"Invalid guardrail identifier {guardrail!r}."
            )
        version = "DRAFT" if version.upper() == "DRAFT" else version
        if not _GUARDRAIL_VERSION.match(version):
            raise invalid_param(
                f"{header}GuardrailVersion",
                f"Invalid guardrail version {version!r}: a number or DRAFT.",
            )
        kwargs["guardrailIdentifier"] = guardrail
        kwargs["guardrailVersion"] = version
    return kwargs


def _choices(name: str, values: Mapping[str, str] | tuple[str, ...]) -> str:
    return f"Invalid {name} value; accepted (case-insensitive): {', '.join(values)}."


def validate(
    request: pb.ImageGenerationRequest, has_bucket: bool, prompt_required: bool = True
) -> CommonParams:
    """`prompt_required=False` for edits: whether a prompt is needed is the edit model's rule."""
    for name in ("prompt", "model", "size", "quality", "style", "user", "safety_identifier"):
        _check_text(getattr(request, name), name)
    extras = MessageToDict(request.extra_params) if request.HasField("extra_params") else {}
    check_json_tree(extras)
    if prompt_required and not request.prompt.strip():
        raise invalid_param(
            "prompt",
            "'prompt' is required and must not be empty.",
            code="missing_required_parameter",
        )
    if not request.model.strip():
        raise invalid_param(
            "model",
            "'model' is required: name a Bedrock image model.",
            code="missing_required_parameter",
        )
    n = request.n if request.HasField("n") else 1
    if not 1 <= n <= MAX_N:
        raise invalid_param("n", f"'n' must be between 1 and {MAX_N}, got {n}.")

    # Without a bucket there is nowhere to put URL images, so the default becomes b64_json.
    response_format = _text(request.response_format) or ("url" if has_bucket else "b64_json")
    if response_format not in RESPONSE_FORMATS:
        raise invalid_param("response_format", "'response_format' must be 'url' or 'b64_json'.")
    if response_format == "url" and not has_bucket:
        raise invalid_param(
            "response_format",
            "response_format 'url' needs an S3 bucket: the server has no AWS_S3_BUCKET "
            "configured. Use response_format 'b64_json'.",
        )

    output_format = _text(request.output_format) or "png"
    output_format = _FORMAT_ALIASES.get(output_format, output_format)
    if output_format not in OUTPUT_FORMATS:
        raise invalid_param(
            "output_format",
            f"output_format {request.output_format!r} is not supported; "
            f"accepted values: {', '.join(OUTPUT_FORMATS)}.",
        )
    compression = request.output_compression if request.HasField("output_compression") else 100
    if not 1 <= compression <= 100:
        raise invalid_param("output_compression", "'output_compression' must be between 1 and 100.")
    partial = request.partial_images if request.HasField("partial_images") else 0
    if not 0 <= partial <= MAX_PARTIAL_IMAGES:
        raise invalid_param(
            "partial_images", f"'partial_images' must be between 0 and {MAX_PARTIAL_IMAGES}."
        )
    for name in ("background", "moderation"):
        value = _text(getattr(request, name))
        if value not in (None, "auto"):
            raise invalid_param(name, f"'{name}' supports only 'auto' on Bedrock models.")

    quality = _text(request.quality)
    return CommonParams(
        prompt=request.prompt,
        model=request.model.strip(),
        n=n,
        size=parse_size(request.size),
        quality=None if quality == "auto" else quality,
        style=request.style.strip() or None,
        response_format=response_format,
        output_format=output_format,
        output_compression=compression,
        partial_images=partial,
        extras=extras,
        bedrock_options=bedrock_options(request.bedrock),
        user=request.safety_identifier or request.user,
    )
