"""Cross-cutting concerns of every RPC, kept out of the servicers.

`CallRecord` is the one place where the real outcome of an RPC is recorded. The HTTP face
answers errors with an HTTP status inside an OK gRPC stream (and SSE errors in-band), so
neither the gRPC status nor "no exception" says what the client got: the servicers report
the status and the error they answered with (`record_status`, `record_error`), and the
interceptor classifies the call once it has ended, for the metrics and the access log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import grpc

from service import metrics
from service.errors import ApiError

log = logging.getLogger("service.access")

OUTCOMES = ("ok", "client_error", "rate_limited", "server_error", "cancelled")
CLIENT_CLOSED = 499  # the status access logs use for a client that went away

# gRPC status of a typed call -> the HTTP status it stands for (the inverse of errors.py).
_GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: CLIENT_CLOSED,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def classify(status: int) -> str:
    """The outcome an HTTP status stands for."""
    if status == CLIENT_CLOSED:
        return "cancelled"
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "client_error"
    if status >= 500:
        return "server_error"
    return "ok"


@dataclass
class CallRecord:
    """What one RPC answered. `status` is the HTTP status on the wire (for typed gRPC callers,
    the one their status code stands for); `error` is the failure the client was told about,
    as that status or in-band after a 200 (an SSE error event, an incomplete JSON answer)."""

    method: str
    started: float = field(default_factory=time.perf_counter)
    status: int = 200
    error: ApiError | None = None
    model: str = ""  # the base model id, once the request named a known one
    cancelled: bool = False

    @property
    def outcome(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.error is not None:
            return classify(self.error.status)
        return classify(self.status)

    @property
    def duration_s(self) -> float:
        return time.perf_counter() - self.started


_current: ContextVar[CallRecord | None] = ContextVar("call_record", default=None)


def current_call() -> CallRecord | None:
    """The record of the RPC being handled in this task (None outside an RPC)."""
    return _current.get()


def record_status(status: int) -> None:
    """The HTTP status the servicer answers with."""
    if record := _current.get():
        record.status = status


def record_error(error: ApiError) -> None:
    """A failure the client is told about (as its status or in-band); the first one counts."""
    if (record := _current.get()) and record.error is None:
        record.error = error


def record_model(model_id: str) -> None:
    if record := _current.get():
        record.model = model_id


def _finish(record: CallRecord, code: grpc.StatusCode | None, exc: BaseException | None) -> None:
    """Fill in what the servicer did not report itself, from how the call ended."""
    if isinstance(exc, asyncio.CancelledError) or code == grpc.StatusCode.CANCELLED:
        record.cancelled = True
        record.status = CLIENT_CLOSED
    elif code is not None and code != grpc.StatusCode.OK:
        # A typed call aborted with a status: its HTTP equivalent, unless already reported.
        if record.error is None:
            record.status = _GRPC_TO_HTTP.get(code, 500)
        else:
            record.status = record.error.status
    elif exc is not None:
        record.status = 500  # an exception escaped the servicer


class AccessLogInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Per server-streaming RPC: a `CallRecord`, then metrics and a log line from it."""

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
            # Each RPC runs in a task of its own, so the record is this call's alone; tasks
            # the servicer starts inherit it.
            record = CallRecord(method)
            _current.set(record)
            failure: BaseException | None = None
            try:
                async for message in inner(request, context):
                    yield message
            except BaseException as exc:
                failure = exc  # CancelledError when the client went away
                raise
            finally:
                _finish(record, context.code(), failure)
                observe(record)

        return grpc.unary_stream_rpc_method_handler(
            logged,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def observe(record: CallRecord) -> None:
    """Metrics and the access log line of one finished call."""
    elapsed = record.duration_s
    outcome = record.outcome
    metrics.RPCS.labels(record.method, record.model, outcome, str(record.status)).inc()
    metrics.RPC_SECONDS.labels(record.method, outcome).observe(elapsed)
    error = f" {record.error.code or record.error.status}" if record.error else ""
    log.info(
        "%s %s %d %s%s %.0f ms",
        record.method,
        record.model or "-",
        record.status,
        outcome,
        error,
        elapsed * 1000,
    )
