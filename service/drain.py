"""Graceful drain: finish the work under way, turn new work away, then stop.

On SIGTERM the server reports NOT_SERVING (Envoy and Kubernetes stop sending), and this
interceptor answers every new RPC with an OpenAI-shaped 503 (typed callers: UNAVAILABLE, which
gRPC clients retry elsewhere) while the RPCs already running finish. When they are done the
process exits; if DRAIN_GRACE runs out first, `stopping` is set so the servicers end what is
left with an error the client can see (an SSE error event, a 503 JSON answer), never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from service import metrics
from service.errors import ApiError
from service.servicers import http_error

log = logging.getLogger(__name__)

# Seconds left for the servicers to send their shutdown errors once the grace has run out.
FAREWELL_S = 2.0


def shutting_down_error() -> ApiError:
    return ApiError(
        503,
        "The server is shutting down and is not taking new requests; retry shortly.",
        code="server_shutting_down",
    )


class Drain(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Counts the streaming RPCs under way and, once draining, refuses new ones."""

    def __init__(self) -> None:
        self.draining = False
        self.stopping = asyncio.Event()  # the grace has run out: end the rest now
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._cut_short = asyncio.Event()

    @property
    def active(self) -> int:
        return self._active

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_streaming or not handler.response_streaming:
            return handler  # health checks and reflection keep answering while draining
        inner = handler.unary_stream
        method = details.method
        # The HTTP face's methods answer google.api.HttpBody and are named *Http.
        http_face = method.endswith("Http")

        async def gated(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            if self.draining:
                error = shutting_down_error()
                if http_face:
                    async for message in http_error(context, error):
                        yield message
                    return
                await context.abort(grpc.StatusCode.UNAVAILABLE, error.message)
            self._active += 1
            self._idle.clear()
            metrics.RPCS_IN_FLIGHT.labels(method).inc()
            try:
                async for message in inner(request, context):
                    yield message
            finally:
                metrics.RPCS_IN_FLIGHT.labels(method).dec()
                self._active -= 1
                if not self._active:
                    self._idle.set()

        return grpc.unary_stream_rpc_method_handler(
            gated,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def cut_short(self) -> None:
        """End the grace now (a second SIGTERM or Ctrl-C)."""
        self._cut_short.set()

    async def drain(self, grace_s: float) -> bool:
        """Refuse new RPCs and wait for the running ones; True if all finished within grace_s."""
        self.draining = True
        log.info("draining: %d RPCs under way, grace %.0f s", self._active, grace_s)
        idle = asyncio.ensure_future(self._idle.wait())
        cut = asyncio.ensure_future(self._cut_short.wait())
        await asyncio.wait((idle, cut), timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
        cut.cancel()
        if idle.done():
            return True
        idle.cancel()
        log.warning("drain over with %d RPCs under way: ending them", self._active)
        self.stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), FAREWELL_S)
        return False
