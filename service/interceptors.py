"""Cross-cutting concerns of every RPC, kept out of the servicers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from service import metrics

log = logging.getLogger("service.access")


class AccessLogInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Per server-streaming RPC: a log line and metrics with method, outcome and duration."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_streaming or not handler.response_streaming:
            return handler  # health checks and reflection pass through unlogged
        inner = handler.unary_stream
        method = details.method

        async def logged(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            started = time.perf_counter()
            outcome = "ok"
            try:
                async for message in inner(request, context):
                    yield message
            except BaseException as exc:
                outcome = type(exc).__name__  # CancelledError when the client went away
                raise
            finally:
                code = context.code()
                elapsed = time.perf_counter() - started
                if code and code != grpc.StatusCode.OK:
                    outcome = code.name
                metrics.RPCS.labels(method, outcome).inc()
                metrics.RPC_SECONDS.labels(method).observe(elapsed)
                log.info("%s %s %.0f ms", method, outcome, elapsed * 1000)

        return grpc.unary_stream_rpc_method_handler(
            logged,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
