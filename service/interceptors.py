"""Cross-cutting concerns of every RPC, kept out of the servicers.

`CallRecord` is the one place where the real outcome of an RPC is recorded. The HTTP face
answers errors with an HTTP status inside an OK gRPC stream (and SSE errors in-band), so
neither the gRPC status nor "no exception" says what the client got: the servicers report
the status and the error they answered with (`record_status`, `record_error`), and the
interceptor classifies the call once it has ended, for the metrics and the access log.

The interceptor is also where every request is authenticated (API keys, browser origins)
and given its request id, so the HTTP face, MCP and the typed gRPC API cannot drift apart;
it writes one JSON access-log line per call from the record (see `service.logs`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.api import httpbody_pb2
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from service import metrics
from service.auth import ApiKey, KeyRing
from service.errors import ApiError
from service.tracing import tracer

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
    alias: str = ""  # the OpenAI model name (MODEL_ALIASES) the request named it by
    cancelled: bool = False
    request_id: str = ""
    key: ApiKey | None = None  # None: the service runs open
    n: int = 0
    size: str = ""
    images: int = 0  # images Bedrock produced (and billed) for this call
    user: str = ""  # user / safety_identifier, as the caller sent it
    prompt: str = ""
    bedrock_request_ids: list[str] = field(default_factory=list)
    unit_price_micro: int = 0  # what one image of this request costs (service.cost)
    # Response headers of this call (x-request-id, rate limits, cost), sent with the first
    # message or with the servicer's own initial metadata.
    headers: dict[str, str] = field(default_factory=dict)
    # Run once the call has ended, whatever the outcome (release limits, settle budgets).
    finishers: list[Callable[[CallRecord], Awaitable[None]]] = field(default_factory=list)

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

    @property
    def key_name(self) -> str:
        return self.key.name if self.key else ""

    @property
    def cost_micro(self) -> int:
        """What the images Bedrock produced for this call cost, in micro-USD."""
        return self.images * self.unit_price_micro


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


def record_images(count: int) -> None:
    """Images Bedrock returned for this call (they are paid for, delivered or not)."""
    if record := _current.get():
        record.images += count


def record_bedrock_request_id(request_id: str) -> None:
    """Bedrock's x-amzn-RequestId of a call: in the access log line and on its trace span."""
    if (record := _current.get()) and request_id:
        record.bedrock_request_ids.append(request_id)
        trace.get_current_span().set_attribute("gen_ai.response.id", request_id)


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


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def request_id(metadata: Mapping[str, str]) -> str:
    """The caller's (or Envoy's) x-request-id when it is a sane token, else a new one."""
    given = metadata.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def origin_allowed(origin: str, allowed: Collection[str], loopback: bool = False) -> bool:
    """A browser request (it carries Origin) only from a configured origin. Requests without
    Origin come from programs, not from pages that a user happens to visit."""
    if not origin:
        return True
    if loopback and (urlsplit(origin).hostname or "") in LOOPBACK_HOSTS:
        return True
    return origin.rstrip("/") in allowed


class _ReplyContext:
    """The servicer's context, with this call's own response headers added to whatever
    initial metadata the servicer sends (it may send it once only)."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], record: CallRecord) -> None:
        self._context = context
        self._record = record
        self.metadata_sent = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def send_initial_metadata(self, metadata: Any = ()) -> None:
        self.metadata_sent = True
        headers = dict(self._record.headers)
        if self._record.images:  # a whole answer: what its images cost (not for SSE)
            headers["x-image-cost-usd"] = f"{self._record.cost_micro / 1_000_000:.6f}"
        await self._context.send_initial_metadata((*metadata, *headers.items()))


@dataclass(frozen=True)
class Gate:
    """Who may call: the API keys and the browser origins; MCP also admits loopback
    origins (local MCP inspectors), as the MCP specification expects."""

    keys: KeyRing = field(default_factory=lambda: KeyRing(()))
    allowed_origins: tuple[str, ...] = ()
    mcp_allowed_origins: tuple[str, ...] = ()

    def check(self, method: str, metadata: Mapping[str, str], record: CallRecord) -> None:
        """Raises the ApiError the caller gets (401, 403) before any work is done."""
        origin = metadata.get("origin", "")
        if method.startswith("/imagegen.v1.Mcp/"):
            allowed = origin_allowed(
                origin, (*self.allowed_origins, *self.mcp_allowed_origins), loopback=True
            )
            setting = "MCP_ALLOWED_ORIGINS"
        else:
            allowed = origin_allowed(origin, self.allowed_origins)
            setting = "CORS_ALLOWED_ORIGINS"
        if not allowed:
            raise ApiError(
                403,
                f"Requests from the browser origin {origin[:100]!r} are not allowed "
                f"(the operator lists allowed origins in {setting}).",
                code="origin_not_allowed",
            )
        record.key = self.keys.authenticate(metadata.get("authorization"))


class CallInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Per server-streaming RPC: a request id and a `CallRecord`, the key and origin checks,
    then metrics and the access log line from the record."""

    def __init__(self, gate: Gate | None = None, log_prompts: bool = False) -> None:
        self._gate = gate or Gate()
        self._log_prompts = log_prompts

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_streaming or not handler.response_streaming:
            return handler  # health checks and reflection pass through, need no key
        inner = handler.unary_stream
        method = details.method
        http_face = method.endswith("Http")  # HttpBody answers behind Envoy's transcoder

        async def intercepted(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            # Each RPC runs in a task of its own, so the record is this call's alone; tasks
            # the servicer starts inherit it.
            record = CallRecord(method)
            _current.set(record)
            metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
            record.request_id = request_id(metadata)
            record.headers["x-request-id"] = record.request_id
            context.set_trailing_metadata((("x-request-id", record.request_id),))
            reply = _ReplyContext(context, record)
            span = tracer.start_span(
                method.rsplit("/", 1)[-1],
                context=propagate.extract(metadata),  # a caller's traceparent, via Envoy
                kind=trace.SpanKind.SERVER,
                attributes={
                    "rpc.system": "grpc",
                    "rpc.method": method,
                    "http.request.header.x-request-id": record.request_id,
                },
            )
            attached: Token[otel_context.Context] | None = otel_context.attach(
                trace.set_span_in_context(span)
            )
            failure: BaseException | None = None
            try:
                try:
                    self._gate.check(method, metadata, record)
                except ApiError as error:
                    record_error(error)
                    if not http_face:
                        await context.abort(error.grpc_code, error.message)
                    record.status = error.status
                    await reply.send_initial_metadata(
                        (("x-http-status", str(error.status)), *error.headers.items())
                    )
                    yield httpbody_pb2.HttpBody(
                        content_type="application/json", data=json.dumps(error.body()).encode()
                    )
                    return
                async for message in inner(request, reply):
                    if not reply.metadata_sent:
                        await reply.send_initial_metadata()
                    yield message
            except GeneratorExit:
                # gRPC stopped reading at a yield: the client left while a message was being
                # written. The event loop closes this generator later from another task,
                # whose context cannot detach the span's (it went with the RPC's task).
                failure, attached = asyncio.CancelledError(), None
                raise
            except BaseException as exc:
                failure = exc  # CancelledError when the client went away
                raise
            finally:
                _finish(record, context.code(), failure)
                for finisher in record.finishers:
                    try:
                        await finisher(record)
                    except Exception:
                        log.exception("clean-up after %s failed", method)
                observe(record, self._log_prompts)
                end_span(span, record)
                if attached is not None:
                    otel_context.detach(attached)

        return grpc.unary_stream_rpc_method_handler(
            intercepted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def end_span(span: trace.Span, record: CallRecord) -> None:
    span.set_attribute("http.response.status_code", record.status)
    span.set_attribute("imagegen.outcome", record.outcome)
    if record.model:
        span.set_attribute("gen_ai.request.model", record.model)
        span.set_attribute("imagegen.images", record.images)
        span.set_attribute("imagegen.cost_usd", record.cost_micro / 1_000_000)
    if record.key:
        span.set_attribute("imagegen.api_key", record.key.name)
    if record.outcome in ("client_error", "rate_limited", "server_error"):
        span.set_status(trace.StatusCode.ERROR, record.error.message if record.error else None)
    span.end()


def _bounded(text: str, limit: int = 128) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def observe(record: CallRecord, log_prompts: bool = False) -> None:
    """Metrics and the access log line of one finished call."""
    elapsed = record.duration_s
    outcome = record.outcome
    metrics.RPCS.labels(record.method, record.model, outcome, str(record.status)).inc()
    metrics.RPC_SECONDS.labels(record.method, outcome).observe(elapsed)
    fields: dict[str, Any] = {
        "request_id": record.request_id,
        "method": record.method,
        "key": record.key.name if record.key else None,
        "model": record.model or None,
        "alias": record.alias or None,
        "n": record.n or None,
        "size": record.size or None,
        "outcome": outcome,
        "status": record.status,
        "error_code": (record.error.code or record.error.error_type) if record.error else None,
        "latency_ms": round(elapsed * 1000, 1),
        "images": record.images,
        "cost_usd": round(record.cost_micro / 1_000_000, 6),
        "user": _bounded(record.user) if record.user else None,
        "bedrock_request_ids": record.bedrock_request_ids or None,
    }
    if log_prompts and record.prompt:
        fields["prompt"] = _bounded(record.prompt, 1000)
    log.info("request", extra={"fields": {k: v for k, v in fields.items() if v is not None}})
