"""Bedrock through boto3: InvokeModel (`bedrock-runtime`), ListFoundationModels (`bedrock`),
their bounded thread pool, and Bedrock's error table.

boto3 is synchronous, so every call runs in a thread pool sized like botocore's connection
pool; the event loop never blocks. Bedrock errors become `ApiError`s with the status an
OpenAI client expects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from service import metrics
from service.config import Settings
from service.errors import ApiError
from service.models.registry import base_model_id

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
CONTENT_FILTER_MARK = "blocked by our content filters"

# Keyword names of InvokeModel for the X-Amzn-Bedrock-* options.
BedrockOptions = Mapping[str, str]


def map_client_error(error: ClientError, model: str) -> ApiError:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "") or str(error)
    if code == "ValidationException" and CONTENT_FILTER_MARK in message:
        return ApiError(400, message, param="prompt", code="content_policy_violation")
    status, openai_code = ERROR_TABLE.get(code, (502, "upstream_error"))
    if status == 404:
        return ApiError(
            404, f"Bedrock cannot find model '{model}': {message}", param="model", code=openai_code
        )
    return ApiError(status, f"Bedrock {code or 'error'}: {message}", code=openai_code)


def _observe_call(work: Future[dict[str, Any]], label: str, started: float) -> None:
    """Metrics of one finished InvokeModel call (run in its thread, or at cancel if queued)."""
    outcome = "ok"
    if work.cancelled():
        outcome = "cancelled"  # dropped before it reached Bedrock
    elif isinstance(error := work.exception(), ApiError):
        outcome = error.code or str(error.status)
    elif error is not None:
        outcome = "error"
    metrics.BEDROCK_IN_FLIGHT.dec()
    metrics.BEDROCK_CALLS.labels(label, outcome).inc()
    metrics.BEDROCK_SECONDS.labels(label).observe(time.perf_counter() - started)


class Bedrock:
    """InvokeModel for image models and the image model catalog, off the event loop."""

    def __init__(self, settings: Settings) -> None:
        config = Config(
            max_pool_connections=settings.bedrock_max_concurrency,
            connect_timeout=settings.bedrock_connect_timeout_s,
            read_timeout=settings.bedrock_read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": settings.bedrock_max_attempts},
        )
        session = boto3.session.Session()
        self._client = session.client(
            "bedrock-runtime", config=config, **settings.aws_client_args()
        )
        self._control = session.client("bedrock", config=config, **settings.aws_client_args())
        self._executor = ThreadPoolExecutor(
            max_workers=settings.bedrock_max_concurrency, thread_name_prefix="bedrock"
        )

    @property
    def endpoint_url(self) -> str:
        return str(self._client.meta.endpoint_url)

    async def invoke(
        self, model: str, body: Mapping[str, Any], options: BedrockOptions
    ) -> dict[str, Any]:
        """One InvokeModel call; the parsed JSON answer or an `ApiError`."""
        label = base_model_id(model)
        started = time.perf_counter()
        metrics.BEDROCK_IN_FLIGHT.inc()
        work = self._executor.submit(self._invoke, model, body, options)
        # A cancelled await does not stop a call already in its thread: the metrics follow
        # the work itself, so the in-flight gauge reads what Bedrock is really doing.
        work.add_done_callback(lambda done: _observe_call(done, label, started))
        return await asyncio.wrap_future(work)

    def _invoke(
        self, model: str, body: Mapping[str, Any], options: BedrockOptions
    ) -> dict[str, Any]:
        try:
            response = self._client.invoke_model(
                modelId=model,
                body=json.dumps(body).encode(),
                contentType="application/json",
                accept="application/json",
                **options,
            )
            payload = orjson.loads(response["body"].read())
        except ClientError as exc:
            raise map_client_error(exc, model) from exc
        except (ConnectTimeoutError, EndpointConnectionError) as exc:
            raise ApiError(
                503, f"Bedrock is unreachable: {exc}", code="upstream_unreachable"
            ) from exc
        except ReadTimeoutError as exc:
            raise ApiError(
                504, f"Bedrock did not answer in time: {exc}", code="upstream_timeout"
            ) from exc
        except (BotoCoreError, ValueError) as exc:
            log.exception("InvokeModel %s failed", model)
            raise ApiError(502, f"Bedrock call failed: {exc}", code="upstream_error") from exc
        if not isinstance(payload, dict):
            raise ApiError(502, "Bedrock returned an unexpected answer.", code="upstream_error")
        return payload

    async def list_image_models(self) -> list[dict[str, Any]]:
        """ListFoundationModels for image output: the region's model summaries."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._list_image_models)

    def _list_image_models(self) -> list[dict[str, Any]]:
        try:
            summaries = self._control.list_foundation_models(byOutputModality="IMAGE")
        except ClientError as exc:
            raise map_client_error(exc, "") from exc
        except BotoCoreError as exc:
            raise ApiError(503, f"Bedrock is unreachable: {exc}", code="upstream_error") from exc
        return list(summaries.get("modelSummaries", []))

    def close(self) -> None:
        # Queued calls are dropped; running ones finish in their threads.
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()
        self._control.close()
