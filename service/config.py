"""All settings of the service, read from environment variables and validated at start-up.

`Settings.from_env()` is the only place that reads the environment; a bad value stops
start-up with a message naming the variable. The README lists every variable.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from service.auth import ApiKey, parse_api_keys, parse_key_file
from service.cost import parse_prices
from service.tracing import EXPORTERS
from service.tracing import enabled as tracing_enabled

if TYPE_CHECKING:
    from service.models.aliases import Alias

# Large enough for the biggest single image event (a 4.2 MP PNG can reach ~13 MB) and for
# request bodies; the HTTP face also splits big JSON answers into 1 MiB chunks.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Request headers Envoy accepts (larger: an OpenAI-shaped 431). The gRPC server behind it
# allows twice as much metadata, so what passes the edge (plus the few headers the transcoder
# adds) never meets gRPC's own limit, which would answer with a bare RESOURCE_EXHAUSTED.
MAX_REQUEST_HEADER_BYTES = 32 * 1024
GRPC_MAX_METADATA_BYTES = 2 * MAX_REQUEST_HEADER_BYTES
# The transcoder wraps a body of the documented limit in an HttpBody message (tags and the
# Content-Type value, itself bounded by the header limit): room for that on the gRPC hop.
HTTP_BODY_ENVELOPE_BYTES = MAX_REQUEST_HEADER_BYTES + 1024


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _json_object(env: Mapping[str, str], name: str, shape: str) -> dict[str, Any]:
    """A variable holding a JSON object ({} when unset); `shape` shows the expected form."""
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"{name} must be a JSON object: {shape}")
    return parsed


def _model_params(env: Mapping[str, str]) -> Mapping[str, Mapping[str, Any]]:
    parsed = _json_object(env, "DEFAULT_MODEL_PARAMS", '{"<model id>": {...}}')
    if not all(isinstance(v, dict) for v in parsed.values()):
        raise ConfigError(
            'DEFAULT_MODEL_PARAMS must be a JSON object of objects: {"<model id>": {...}}'
        )
    # Read-only views: defaults are shared by every request and must never change.
    return MappingProxyType({model: MappingProxyType(params) for model, params in parsed.items()})


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in env.get(name, "").split(",") if o.strip())
    for origin in origins:
        if not re.match(r"^https?://[^/\s]+$", origin):
            raise ConfigError(f"{name}: {origin!r} is not an origin like https://app.example.com")
    return origins


def _model_aliases(env: Mapping[str, str]) -> Mapping[str, Alias]:
    """MODEL_ALIASES replaces the built-in table of OpenAI model names (`{}`: no aliases)."""
    from service.models.aliases import DEFAULT_ALIASES, parse_aliases

    raw = env.get("MODEL_ALIASES", "").strip()
    try:
        table = json.loads(raw) if raw else dict(DEFAULT_ALIASES)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"MODEL_ALIASES is not valid JSON: {exc}") from None
    try:
        return MappingProxyType(parse_aliases(table))
    except ValueError as exc:
        raise ConfigError(f"MODEL_ALIASES{exc}") from None


def _known_model(name: str, aliases: Mapping[str, Alias]) -> str:
    """The base model id of a model this service serves (generation or edit), else ValueError.

    Prices and key allowlists name Bedrock models (what runs and is billed), not aliases: a
    key allowed a model may use it under any alias.
    """
    from service.models.registry import (  # here: the registry imports this module
        all_edit_models,
        all_models,
        base_model_id,
    )

    if name.strip() in aliases:
        targets = ", ".join(sorted(set(aliases[name.strip()].targets.values())))
        raise ValueError(
            f"{name!r} is an alias (MODEL_ALIASES) of {targets}: name the Bedrock model id"
        )
    model_id = base_model_id(name.strip())
    known = {spec.model_id for _, spec in all_models()}
    known |= {spec.model_id for _, spec in all_edit_models()}
    if model_id not in known:
        raise ValueError(f"unknown model {name!r}")
    return model_id


def _prices(env: Mapping[str, str], aliases: Mapping[str, Alias]) -> Mapping[str, int]:
    known = functools.partial(_known_model, aliases=aliases)
    try:
        return MappingProxyType(parse_prices(env.get("IMAGE_PRICES", ""), known))
    except ValueError as exc:
        raise ConfigError(f"IMAGE_PRICES: {exc}") from None


def aws_regions() -> frozenset[str]:
    """The regions botocore knows Bedrock in, every partition."""
    import boto3  # here: only start-up needs it

    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("bedrock", partition_name=partition)
    )


def _model_regions(env: Mapping[str, str], aliases: Mapping[str, Alias]) -> Mapping[str, str]:
    """BEDROCK_MODEL_REGIONS: {"<model id>": "<region>"}, overriding where a model is called."""
    parsed = _json_object(env, "BEDROCK_MODEL_REGIONS", '{"<model id>": "<region>"}')
    if not parsed:
        return MappingProxyType({})
    known_regions = aws_regions()
    routes: dict[str, str] = {}
    for name, region in parsed.items():
        try:
            model_id = _known_model(name, aliases)
        except ValueError as exc:
            raise ConfigError(f"BEDROCK_MODEL_REGIONS: {exc}") from None
        if not isinstance(region, str) or region not in known_regions:
            raise ConfigError(
                f"BEDROCK_MODEL_REGIONS[{name!r}]: {region!r} is not a Bedrock region "
                f"(known: {', '.join(sorted(known_regions))})"
            )
        routes[model_id] = region
    return MappingProxyType(routes)


def _tracing(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_TRACES_EXPORTER", "").strip():
        _choice(env, "OTEL_TRACES_EXPORTER", "otlp", EXPORTERS)
    return tracing_enabled(env)


def _redis_url(env: Mapping[str, str]) -> str:
    url = env.get("REDIS_URL", "").strip()
    if url and not re.match(r"^(rediss?|unix)://", url):
        # The URL may hold a password: not repeated in the message.
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    return url


def _api_keys(env: Mapping[str, str], aliases: Mapping[str, Alias]) -> tuple[ApiKey, ...]:
    """API_KEYS (name=<sha256 hex>,...) plus the entries of API_KEYS_FILE."""
    seen: set[str] = set()
    try:
        keys = parse_api_keys(env.get("API_KEYS", ""), seen)
    except ValueError as exc:
        raise ConfigError(f"API_KEYS: {exc}") from None
    path = env.get("API_KEYS_FILE", "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError as exc:
            raise ConfigError(f"API_KEYS_FILE: cannot read {path}: {exc.strerror}") from None
        try:
            keys += parse_key_file(text, seen, functools.partial(_known_model, aliases=aliases))
        except ValueError as exc:
            raise ConfigError(f"API_KEYS_FILE ({path}): {exc}") from None
    return tuple(keys)


@dataclass(frozen=True)
class Settings:
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464  # 0 turns the metrics endpoint off
    backend: str = "emulator"  # "emulator" (local stand-in) or "aws"
    aws_region: str = "us-east-1"
    # Model id -> region it is called in, over the model tables (service/regions.py).
    bedrock_model_regions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    bedrock_max_concurrency: int = 256
    bedrock_calls_per_request: int = 4
    bedrock_connect_timeout_s: float = 10.0
    bedrock_read_timeout_s: float = 360.0
    bedrock_max_attempts: int = 3
    s3_bucket: str = ""
    s3_accelerate: bool = False
    s3_url_expires_s: int = 3600
    sse_keepalive_s: float = 10.0
    # On SIGTERM: how long RPCs under way may take to finish (Kubernetes'
    # terminationGracePeriodSeconds must cover it plus the preStop delay).
    drain_grace_s: float = 300.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    default_model_params: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    log_level: str = "info"
    # Browser origins allowed to call /mcp (loopback origins always are).
    mcp_allowed_origins: tuple[str, ...] = ()
    # API keys (API_KEYS, API_KEYS_FILE); none: the service runs open.
    api_keys: tuple[ApiKey, ...] = ()
    allow_unauthenticated: bool = False
    # Browser origins allowed to call the API; a request from any other Origin is refused.
    cors_allowed_origins: tuple[str, ...] = ()
    grpc_reflection: bool = True
    log_prompts: bool = False
    # Shared counters (limits, budgets, usage) for every replica; empty: this process only.
    redis_url: str = ""
    usage_db: str = ""  # SQLite file of spend and usage without Redis; empty: in memory
    image_prices: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    bedrock_max_in_flight: int = 0  # Bedrock calls admitted at once; 0: 4 x concurrency
    tracing: bool = False  # OpenTelemetry, from the standard OTEL_* variables
    # Processes that parse large request bodies (service/parse_pool.py); 0: threads.
    parse_workers: int = 1
    # OpenAI model names -> Bedrock models (MODEL_ALIASES).
    model_aliases: Mapping[str, Alias] = field(default_factory=lambda: _model_aliases({}))

    def aws_client_args(self) -> dict[str, str]:
        """Keyword arguments every boto3 client of the service gets."""
        args = {"region_name": self.aws_region}
        if self.backend == "emulator":
            # The local stand-ins need some credentials for SigV4; any value will do.
            args |= {"aws_access_key_id": "emulator", "aws_secret_access_key": "emulator"}
        return args

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        backend = _choice(env, "IMAGES_BACKEND", "emulator", ("emulator", "aws"))
        if backend == "emulator" and not env.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
            # Dummy credentials must never reach real AWS by accident.
            raise ConfigError(
                "IMAGES_BACKEND=emulator (the default) needs AWS_ENDPOINT_URL_BEDROCK_RUNTIME "
                "pointing at the local emulator (make run sets it); "
                "set IMAGES_BACKEND=aws to use AWS Bedrock."
            )
        model_aliases = _model_aliases(env)
        api_keys = _api_keys(env, model_aliases)
        allow_unauthenticated = _bool(env, "ALLOW_UNAUTHENTICATED", False)
        if backend == "aws" and not api_keys and not allow_unauthenticated:
            raise ConfigError(
                "IMAGES_BACKEND=aws with no API keys would let anyone spend on your AWS account: "
                "set API_KEYS or API_KEYS_FILE (python -m service keys new NAME makes a key), "
                "or ALLOW_UNAUTHENTICATED=true to run open on purpose."
            )
        return cls(
            grpc_host=env.get("GRPC_HOST", "").strip() or "127.0.0.1",
            grpc_port=_int(env, "GRPC_PORT", 50051, 0, 65535),
            metrics_host=env.get("METRICS_HOST", "").strip() or "127.0.0.1",
            metrics_port=_int(env, "METRICS_PORT", 9464, 0, 65535),
            backend=backend,
            aws_region=region,
            bedrock_model_regions=_model_regions(env, model_aliases),
            bedrock_max_concurrency=_int(env, "BEDROCK_MAX_CONCURRENCY", 256, 1, 4096),
            bedrock_calls_per_request=_int(env, "BEDROCK_CALLS_PER_REQUEST", 4, 1, 10),
            bedrock_connect_timeout_s=_float(env, "BEDROCK_CONNECT_TIMEOUT", 10.0, 0.1, 600),
            bedrock_read_timeout_s=_float(env, "BEDROCK_READ_TIMEOUT", 360.0, 0.1, 3600),
            bedrock_max_attempts=_int(env, "BEDROCK_MAX_ATTEMPTS", 3, 1, 10),
            s3_bucket=env.get("AWS_S3_BUCKET", "").strip(),
            s3_accelerate=_bool(env, "AWS_S3_ACCELERATE", False),
            # SigV4 presigned URLs live at most 7 days.
            s3_url_expires_s=_int(env, "S3_URL_EXPIRES", 3600, 1, 604800),
            sse_keepalive_s=_float(env, "SSE_KEEPALIVE_INTERVAL", 10.0, 0.05, 300),
            drain_grace_s=_float(env, "DRAIN_GRACE", 300.0, 0, 3600),
            max_message_bytes=_int(
                env, "GRPC_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, 4 << 20, 1 << 30
            ),
            default_model_params=_model_params(env),
            log_level=_choice(env, "LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            mcp_allowed_origins=tuple(
                o.strip().rstrip("/")
                for o in env.get("MCP_ALLOWED_ORIGINS", "").split(",")
                if o.strip()
            ),
            api_keys=api_keys,
            allow_unauthenticated=allow_unauthenticated,
            cors_allowed_origins=_origins(env, "CORS_ALLOWED_ORIGINS"),
            grpc_reflection=_bool(env, "GRPC_REFLECTION", True),
            log_prompts=_bool(env, "LOG_PROMPTS", False),
            redis_url=_redis_url(env),
            usage_db=env.get("USAGE_DB", "").strip(),
            image_prices=_prices(env, model_aliases),
            model_aliases=model_aliases,
            bedrock_max_in_flight=_int(env, "BEDROCK_MAX_IN_FLIGHT", 0, 0, 100_000),
            tracing=_tracing(env),
            parse_workers=_int(env, "PARSE_WORKERS", 1, 0, 64),
        )
