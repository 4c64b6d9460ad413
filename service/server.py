"""Builds the grpc.aio server: servicers, health, reflection, access log, message limits."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from typing import Any

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from service import metrics, usage
from service.admission import Admission
from service.auth import KeyRing
from service.bedrock import Bedrock
from service.config import GRPC_MAX_METADATA_BYTES, HTTP_BODY_ENVELOPE_BYTES, ConfigError, Settings
from service.cost import PriceTable
from service.drain import Drain
from service.interceptors import CallInterceptor, Gate
from service.ledger import Ledger, RedisLedger, SqliteLedger
from service.limits import Counters, LocalCounters, RedisCounters
from service.models import aliases
from service.models.registry import check_default_params
from service.parse_pool import BodyParser, Checks
from service.pipeline import Pipeline
from service.servicers import (
    ImageGenerationServicer,
    McpServicer,
    ModelsServicer,
    UsageReportServicer,
)
from service.storage import ImageStore

log = logging.getLogger(__name__)

# glibc's mallopt parameters and the values this service runs with (see keep_freed_memory).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest
TRIM_THRESHOLD_BYTES = 128 << 20


def keep_freed_memory() -> None:
    """Keep the megabytes an answer frees for the next one instead of giving them back.

    Every 2 MB image passes through several buffers of its size (Bedrock's JSON, its base64,
    the answer's chunks, gRPC's messages). With glibc's defaults each is an mmap of fresh
    pages, or the heap is trimmed after each answer: every request then pays a page fault
    per 4 KB again. With these thresholds the pages stay mapped, at most TRIM_THRESHOLD_BYTES
    of free heap (measured: 22 to 14 ms of service CPU per 2 MB answer, docs/performance.md).
    Nothing happens where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


SERVICE_NAMES = tuple(service.full_name for service in pb.DESCRIPTOR.services_by_name.values())


class ImageServer:
    """The running service: gRPC server plus the clients it owns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        usage.warm_up()
        aliases.use(settings.model_aliases)
        check_default_params(settings.default_model_params)
        self.bedrock = Bedrock(settings)
        store = ImageStore(settings) if settings.s3_bucket else None
        pipeline = Pipeline(
            self.bedrock, store, settings.default_model_params, settings.bedrock_calls_per_request
        )
        limits: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", settings.max_message_bytes),
            (
                "grpc.max_receive_message_length",
                settings.max_message_bytes + HTTP_BODY_ENVELOPE_BYTES,
            ),
            ("grpc.max_metadata_size", GRPC_MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", GRPC_MAX_METADATA_BYTES),
            # The port is ours alone: a second server on it fails instead of sharing calls.
            ("grpc.so_reuseport", 0),
        ]
        self.drain = Drain()
        keys = KeyRing(settings.api_keys)
        gate = Gate(keys, settings.cors_allowed_origins, settings.mcp_allowed_origins)
        # The call interceptor is outermost, so it also records the 503s of a draining server.
        calls = CallInterceptor(gate, log_prompts=settings.log_prompts)
        self.server = grpc.aio.server(interceptors=[calls, self.drain], options=limits)
        self.redis = aioredis.from_url(settings.redis_url) if settings.redis_url else None
        counters: Counters = RedisCounters(self.redis) if self.redis else LocalCounters()
        ledger: Ledger = RedisLedger(self.redis) if self.redis else SqliteLedger(settings.usage_db)
        admission = Admission(
            counters,
            ledger,
            PriceTable(settings.image_prices),
            settings.bedrock_max_in_flight or 4 * settings.bedrock_max_concurrency,
        )
        # Large bodies are parsed in worker processes, started once serving; they check
        # generation requests with the pipeline's settings.
        checks = Checks(
            has_bucket=store is not None,
            default_model_params={m: dict(p) for m, p in settings.default_model_params.items()},
            model_aliases={name: dict(a.targets) for name, a in settings.model_aliases.items()},
        )
        self.parser = BodyParser(settings.parse_workers, checks)
        self._parser_started: asyncio.Task[None] | None = None
        pb_grpc.add_ImageGenerationServicer_to_server(
            ImageGenerationServicer(
                pipeline, admission, settings.sse_keepalive_s, self.drain.stopping, self.parser
            ),
            self.server,
        )
        pb_grpc.add_ModelsServicer_to_server(ModelsServicer(self.bedrock.catalog), self.server)
        pb_grpc.add_McpServicer_to_server(
            McpServicer(pipeline, admission, store, self.parser), self.server
        )
        pb_grpc.add_UsageReportServicer_to_server(UsageReportServicer(ledger), self.server)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]  # grpc-stubs predates aio
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if settings.grpc_reflection:
            reflection.enable_server_reflection(
                (
                    *SERVICE_NAMES,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ),
                self.server,
            )
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError:
            raise ConfigError(
                f"GRPC_PORT={settings.grpc_port}: cannot listen on {address} (in use?); "
                "set GRPC_HOST/GRPC_PORT to a free address"
            ) from None

    async def start(self) -> None:
        await self.server.start()
        if self.settings.metrics_port:
            try:
                metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
            except OSError as exc:
                raise ConfigError(
                    f"METRICS_PORT={self.settings.metrics_port}: cannot listen on "
                    f"{self.settings.metrics_host}:{self.settings.metrics_port} ({exc.strerror}); "
                    "set METRICS_PORT to a free port, or 0 for no metrics endpoint"
                ) from None
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        # In the background: serving does not wait for them, a large body does.
        self._parser_started = asyncio.create_task(self.parser.start())
        if not self.settings.api_keys:
            log.warning(
                "NO API KEYS CONFIGURED: anyone who reaches this service can generate images "
                "at your expense. Set API_KEYS or API_KEYS_FILE "
                "(python -m service keys new NAME makes a key)."
            )
        else:
            log.info("%d API key(s) configured", len(self.settings.api_keys))
        log.info(
            "gRPC service on %s:%d (Bedrock at %s)",
            self.settings.grpc_host,
            self.port,
            self.bedrock.endpoint_url,
        )

    async def stop(self) -> None:
        """Drain: NOT_SERVING, new RPCs refused with 503, running ones finish (DRAIN_GRACE)."""
        await self.health.enter_graceful_shutdown()
        finished = await self.drain.drain(self.settings.drain_grace_s)
        await self.server.stop(0 if finished else 1.0)
        if self._parser_started is not None:
            await self._parser_started
        await self.parser.close()
        await self.bedrock.close()
        if self.redis is not None:
            await self.redis.aclose()
        log.info("stopped (%s)", "drained" if finished else "drain grace ran out")
