"""Bedrock: InvokeModel (`bedrock-runtime`) on asyncio, ListFoundationModels (`bedrock`), and
Bedrock's error table.

Image generations take seconds to minutes each, so InvokeModel runs on the event loop
on an aiobotocore client (botocore's own signing, retries and error parsing over aiohttp),
called through `service.invoke_model`, which skips botocore's per-call machinery: a call in
flight costs a socket and a coroutine, not an OS thread, and cancelling it (the client went
away) really aborts its HTTP request. The rare control-plane call stays on boto3, in a
thread. Bedrock errors become `ApiError`s with the status an OpenAI client expects.
"""

from __future__ import annotations

import asyncio
import binascii
import contextvars
import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiobotocore
import boto3
import botocore
import orjson
import pybase64
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from service import __version__, metrics
from service.catalog import ModelCatalog, ModelEntry
from service.config import Settings
from service.errors import ApiError
from service.interceptors import current_call, record_bedrock_request_id
from service.invoke_model import InvokeModel
from service.models.registry import all_edit_models, all_models, base_model_id
from service.regions import RegionRouter

log = logging.getLogger(__name__)

# Bedrock error code -> (HTTP status for our client, OpenAI error code).
ERROR_TABLE: Mapping[str, tuple[int, str]] = {
    "ValidationException": (400, "invalid_request"),
    "ResourceNotFoundException": (404, "model_not_found"),
    "AccessDeniedException": (403, "access_denied"),
    "ServiceQuotaExceededException": (429, "quota_exceeded"),
    "ThrottlingException": (429, "rate_limit_exceeded"),
    "ModelNotReadyException": (429, "model_not_ready"),
    "ModelTimeoutException": (504, "model_timeout"),
    "ModelErrorException": (502, "model_error"),
    "InternalServerException": (502, "upstream_error"),
    "ServiceUnavailableException": (503, "service_unavailable"),
}
USER_AGENT = (
    f"bedrock-images/{__version__} aiobotocore/{aiobotocore.__version__} "
    f"botocore/{botocore.__version__}"
)
CONTENT_FILTER_MARK = "blocked by our content filters"
RETRY_HINT = "This is usually temporary: retry the request."

LIFECYCLE_WAIT_S = 5.0  # how long a refusal waits for the model's lifecycle dates
END_OF_LIFE_MARK = "end of its life"
INVALID_ID_MARK = "provided model identifier is invalid"
NOT_ALLOWED_MARK = "operation not allowed"


def refusal_kind(code: str, message: str) -> str | None:
    """retired | invalid_id | not_allowed | access_denied, or None for other errors."""
    lower = message.lower()
    if code in ("ResourceNotFoundException", "ValidationException", "AccessDeniedException"):
        if END_OF_LIFE_MARK in lower or "end of life" in lower:
            return "retired"
    if code == "ValidationException" and INVALID_ID_MARK in lower:
        return "invalid_id"
    if code == "ValidationException" and NOT_ALLOWED_MARK in lower:
        return "not_allowed"
    if code == "AccessDeniedException":
        return "access_denied"
    return None


def replacement(model: str) -> str:
    """The living model(s) to use instead of `model`, as a sentence (empty: none known)."""
    model_id = base_model_id(model)
    generate = next((s.replaced_by for _, s in all_models() if s.model_id == model_id), "")
    edit = next((s.replaced_by for _, s in all_edit_models() if s.model_id == model_id), "")
    if generate and edit and edit != generate:
        return f" Use {generate} instead (for edits: {edit})."
    return f" Use {generate or edit} instead." if generate or edit else ""


def explain_refusal(
    kind: str, message: str, model: str, region: str, entry: ModelEntry | None
) -> ApiError:
    """The OpenAI error for a model Bedrock will not run: what happened and what to do."""
    if kind == "retired" or (kind == "invalid_id" and entry is not None and entry.retired):
        day = entry.end_of_life_at.date().isoformat() if entry and entry.end_of_life_at else ""
        return ApiError(
            404,
            f"The model '{model}' has reached end of life on Bedrock{f' on {day}' if day else ''}"
            f" and can no longer be called.{replacement(model)}",
            param="model",
            code="model_not_found",
        )
    if kind == "invalid_id":
        return ApiError(
            404,
            f"Bedrock in {region} does not offer '{model}' under this identifier ({message}). "
            "Name the model as the models API lists it, or set BEDROCK_MODEL_REGIONS to the "
            "region that serves it.",
            param="model",
            code="model_not_found",
        )
    if kind == "not_allowed":
        return ApiError(
            403,
            f"Bedrock in {region} refused '{model}': Operation not allowed. The AWS account has "
            "no access to this model: its first call subscribes the account through AWS "
            "Marketplace, which needs the aws-marketplace:Subscribe permission; check model "
            "access in the Bedrock console.",
            param="model",
            code="model_access_denied",
        )
    return ApiError(
        403,
        f"Bedrock in {region} denied access to '{model}': {message} Allow bedrock:InvokeModel "
        "on it (for a us. profile: the inference-profile ARN and the foundation-model ARN in "
        "each of its regions) and enable model access in the Bedrock console.",
        param="model",
        code="model_access_denied",
    )


# Keyword names of InvokeModel for the X-Amzn-Bedrock-* options.
BedrockOptions = Mapping[str, str]


def map_client_error(error: ClientError, model: str, region: str) -> ApiError:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "") or str(error)
    if code == "ValidationException" and CONTENT_FILTER_MARK in message:
        return ApiError(400, message, param="prompt", code="content_policy_violation")
    status, openai_code = ERROR_TABLE.get(code, (502, "upstream_error"))
    if status == 404:
        return ApiError(
            404,
            f"Bedrock in {region} cannot find model '{model}': {message}",
            param="model",
            code=openai_code,
        )
    text = f"Bedrock {code or 'error'}: {message}"
    if status >= 500 and "try" not in message.lower():  # Bedrock's own words may not say so
        text += " " + RETRY_HINT
    return ApiError(status, text, code=openai_code)


class Bedrock:
    """InvokeModel for image models and the image model catalog, never blocking the loop.

    The asyncio client is made on first use, on the loop that uses it (aiohttp sessions
    belong to one loop); `close()` must be awaited on that loop.
    """

    def __init__(self, settings: Settings) -> None:
        options: dict[str, Any] = {
            # Calls beyond the pool wait for a free connection, in order.
            "max_pool_connections": settings.bedrock_max_concurrency,
            "connect_timeout": settings.bedrock_connect_timeout_s,
            "read_timeout": settings.bedrock_read_timeout_s,
            "retries": {"mode": "standard", "total_max_attempts": settings.bedrock_max_attempts},
            # A fixed User-Agent: botocore otherwise assembles its own twice per call, from a
            # dozen components, a fifth of the CPU an InvokeModel call costs here.
            "user_agent": USER_AGENT,
        }
        self._settings = settings
        self.router = RegionRouter(settings.aws_region, settings.bedrock_model_regions)
        self._runtime_config = AioConfig(**options)
        self._control_config = Config(**options)
        # One client per region in use, each made on first use (the aiobotocore ones on the
        # loop that uses them: aiohttp sessions belong to one loop).
        self._runtime: dict[str, InvokeModel] = {}
        self._runtime_exits: list[Any] = []
        self._runtime_lock = asyncio.Lock()
        self._control: dict[str, Any] = {}
        self._control_lock = threading.Lock()
        self._session = boto3.session.Session()
        # The models API runs on threads of its own: GET /v1/models never waits behind the
        # image work (decoding, previews, uploads) queued on asyncio's default executor.
        self._control_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bedrock-models")
        self.endpoint_url = self._resolve_endpoint()
        self.catalog = ModelCatalog(self.list_image_models, self.router)
        log.info("Bedrock regions by model: %s", self.router.describe())

    def _client_args(self, region: str) -> dict[str, str]:
        return self._settings.aws_client_args() | {"region_name": region}

    def _resolve_endpoint(self) -> str:
        """Where InvokeModel goes in AWS_REGION (for the start-up log), as botocore resolves it."""
        probe = self._session.client(
            "bedrock-runtime", **self._client_args(self._settings.aws_region)
        )
        try:
            return str(probe.meta.endpoint_url)
        finally:
            probe.close()

    async def _invoker(self, region: str) -> InvokeModel:
        if region not in self._runtime:
            async with self._runtime_lock:
                if region not in self._runtime:
                    context = get_session().create_client(
                        "bedrock-runtime",
                        config=self._runtime_config,
                        **self._client_args(region),
                    )
                    self._runtime[region] = InvokeModel(await context.__aenter__())
                    self._runtime_exits.append(context.__aexit__)
        return self._runtime[region]

    def _control_client(self, region: str) -> Any:
        with self._control_lock:  # boto3 sessions are not thread-safe
            if region not in self._control:
                self._control[region] = self._session.client(
                    "bedrock", config=self._control_config, **self._client_args(region)
                )
            return self._control[region]

    async def invoke(
        self, model: str, body: Mapping[str, Any], options: BedrockOptions
    ) -> dict[str, Any]:
        """One InvokeModel call; the parsed JSON answer or an `ApiError`."""
        label = base_model_id(model)
        outcome = "ok"
        started = time.perf_counter()
        metrics.BEDROCK_IN_FLIGHT.inc()
        try:
            return await self._invoke(model, body, options)
        except ApiError as exc:
            outcome = exc.code or str(exc.status)
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"  # its HTTP request is aborted with it
            raise
        finally:
            metrics.BEDROCK_IN_FLIGHT.dec()
            metrics.BEDROCK_CALLS.labels(label, outcome).inc()
            metrics.BEDROCK_SECONDS.labels(label).observe(time.perf_counter() - started)

    async def _invoke(
        self, model: str, body: Mapping[str, Any], options: BedrockOptions
    ) -> dict[str, Any]:
        region = self.router.region_for(model)
        invoke_model = await self._invoker(region)
        try:
            answer = await invoke_model(model, json.dumps(body).encode(), options)
            record_bedrock_request_id(answer.request_id)
            payload = parse_answer(answer.body)
        except ClientError as exc:
            record_bedrock_request_id(exc.response.get("ResponseMetadata", {}).get("RequestId", ""))
            raise await self._refusal(exc, model, region) from exc
        # The client is told what happened; where (the endpoint URL in botocore's message)
        # goes to the log with the request id.
        except (ConnectTimeoutError, EndpointConnectionError) as exc:
            _log_failure(model, exc)
            raise ApiError(
                503, "Bedrock is unreachable; retry later.", code="upstream_unreachable"
            ) from exc
        except ReadTimeoutError as exc:
            _log_failure(model, exc)
            raise ApiError(
                504, "Bedrock did not answer in time; retry later.", code="upstream_timeout"
            ) from exc
        except (BotoCoreError, ValueError) as exc:
            _log_failure(model, exc)
            raise ApiError(
                502, "The Bedrock call failed; retry later.", code="upstream_error"
            ) from exc
        if not isinstance(payload, dict):
            raise ApiError(502, "Bedrock returned an unexpected answer.", code="upstream_error")
        return payload

    async def _refusal(self, error: ClientError, model: str, region: str) -> ApiError:
        """Bedrock's refusal explained: retired (with the date Bedrock's listing gives),
        not offered under this id in this region, or no access; else the error table."""
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        kind = refusal_kind(code, message)
        if kind is None:
            return map_client_error(error, model, region)
        entry = None
        if kind in ("retired", "invalid_id"):
            if kind == "retired":
                self.catalog.refused_as_retired(model)
            try:  # the date, from ListFoundationModels (cached), if Bedrock answers soon
                entry = await asyncio.wait_for(self.catalog.lookup(model), LIFECYCLE_WAIT_S)
            except (ApiError, TimeoutError):
                entry = None
        return explain_refusal(kind, message, model, region, entry)

    async def list_image_models(self, region: str) -> list[dict[str, Any]]:
        """ListFoundationModels for image output: the model summaries of one region."""
        loop = asyncio.get_running_loop()
        call = contextvars.copy_context()  # request id for the log, as to_thread would
        return await loop.run_in_executor(
            self._control_pool, call.run, self._list_image_models, region
        )

    def _list_image_models(self, region: str) -> list[dict[str, Any]]:
        try:
            summaries = self._control_client(region).list_foundation_models(
                byOutputModality="IMAGE"
            )
        except ClientError as exc:
            raise map_client_error(exc, "", region) from exc
        except BotoCoreError as exc:
            _log_failure(f"ListFoundationModels in {region}", exc)
            raise ApiError(
                503, "Bedrock is unreachable; retry later.", code="upstream_error"
            ) from exc
        return list(summaries.get("modelSummaries", []))

    async def close(self) -> None:
        """Closes the connections; calls still running fail (the server has stopped them)."""
        exits, self._runtime_exits = self._runtime_exits, []
        self._runtime.clear()
        for exit_client in exits:
            await exit_client(None, None, None)
        self._control_pool.shutdown(wait=False, cancel_futures=True)
        with self._control_lock:
            for control in self._control.values():
                control.close()
            self._control.clear()


# Strings at least this long in Bedrock's answers are its base64 images.
LONG_STRING_BYTES = 16 * 1024
_PLACEHOLDER = "\x00bedrock-images-long-string-"


def parse_answer(raw: bytes) -> Any:
    """`orjson.loads(raw)`, with the long base64 strings (the images) lifted out first.

    A JSON parser checks a string character by character (about 2 ms per 2 MB image);
    base64 needs no JSON escapes, so each image string is checked as base64 at memory speed
    instead, replaced by a short placeholder, and put back after the rest is parsed. Any
    doubt (escapes, not base64, a placeholder-like text already there, a string that ends
    up not being a whole value) and it is plain `orjson.loads`: the result is always the same.
    """
    spans = _long_base64_strings(raw)
    marker = _PLACEHOLDER.encode("unicode_escape").replace(b"\\x00", b"\\u0000")
    if not spans or marker in raw:
        return orjson.loads(raw)
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    images: dict[str, str] = {}
    at = 0
    for number, (start, end) in enumerate(spans):
        pieces += [view[at:start], marker, str(number).encode()]
        images[f"{_PLACEHOLDER}{number}"] = str(view[start:end], "ascii")
        at = end
    pieces.append(view[at:])
    payload = orjson.loads(b"".join(pieces))
    placed = _put_back(payload, images)
    return payload if placed == len(images) else orjson.loads(raw)


def _long_base64_strings(raw: bytes) -> list[tuple[int, int]]:
    """(start, end) of the contents of each long JSON string of `raw` that is plain base64.

    In JSON text a quote is either a string's delimiter or escaped inside one (preceded by
    an odd number of backslashes), so the quotes alone give every string's bounds.
    """
    spans: list[tuple[int, int]] = []
    view = memoryview(raw)
    opening = raw.find(b'"')
    while opening != -1:
        closing = raw.find(b'"', opening + 1)
        while closing != -1 and _escaped(raw, closing):
            closing = raw.find(b'"', closing + 1)
        if closing == -1:
            return []  # not JSON: orjson says what is wrong
        if closing - opening > LONG_STRING_BYTES and _is_base64(view[opening + 1 : closing]):
            spans.append((opening + 1, closing))
        opening = raw.find(b'"', closing + 1)
    return spans


def _escaped(raw: bytes, quote: int) -> bool:
    backslashes = 0
    while quote - backslashes > 0 and raw[quote - backslashes - 1] == 0x5C:
        backslashes += 1
    return backslashes % 2 == 1


def _is_base64(text: memoryview) -> bool:
    try:
        pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _put_back(node: Any, images: Mapping[str, str]) -> int:
    """Replaces each placeholder that is a whole value by its string; how many it did."""
    placed = 0
    if isinstance(node, dict | list):
        keys = node.keys() if isinstance(node, dict) else range(len(node))
        for key in keys:
            value = node[key]
            if isinstance(value, str) and value in images:
                node[key] = images[value]
                placed += 1
            else:
                placed += _put_back(value, images)
    return placed


def _log_failure(what: str, exc: Exception) -> None:
    call = current_call()
    log.warning("request %s: Bedrock %s failed: %s", call.request_id if call else "-", what, exc)
