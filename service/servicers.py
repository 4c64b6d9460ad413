"""Thin gRPC servicers: convert at the edge, call the one pipeline.

`Generate` and `Edit` are the typed API. `GenerateHttp`, `EditHttp`, `VariationHttp` and
`ListModelsHttp` are the OpenAI HTTP face
behind Envoy's transcoder: raw body in, exact bytes out. An HTTP error status is set by
the `x-http-status` response header, which Envoy's Lua filter turns into the real status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from typing import Any, TypeAlias, TypeVar

import grpc
import orjson
from google.api import httpbody_pb2

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from service import converters, mcp, metrics, multipart, openai_edits, openai_http, usage_report
from service.admission import Admission
from service.catalog import ModelCatalog
from service.errors import ApiError
from service.interceptors import current_call, record_error, record_status
from service.ledger import Ledger
from service.parse_pool import PARSE_INLINE_BYTES, BodyParser, generation_request
from service.pipeline import Event, ImageEvent, PartialImageEvent, Pipeline, Plan

log = logging.getLogger(__name__)

HTTP_STATUS_HEADER = "x-http-status"
T = TypeVar("T")


def grace_expired() -> ApiError:
    return ApiError(
        503,
        "The server shut down before this request could finish; retry it.",
        code="server_shutting_down",
    )


HttpStream = AsyncIterator[httpbody_pb2.HttpBody]
SseStream = AsyncGenerator[httpbody_pb2.HttpBody, None]
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    log.exception("unexpected failure", exc_info=exc)
    return ApiError(500, "The server failed to process the request.", code="internal_error")


async def prepared(pipeline: Pipeline, request: pb.ImageGenerationRequest) -> Plan:
    """`pipeline.prepare(request)`; a request of megabytes (a long prompt, large extras) is
    checked in a thread, where the event loop gets its turns while the checks run."""
    if request.ByteSize() > PARSE_INLINE_BYTES:
        return await asyncio.to_thread(pipeline.prepare, request)
    return pipeline.prepare(request)


async def http_answer(
    context: Context, status: int, content_type: str, body: bytes, headers: Mapping[str, str]
) -> HttpStream:
    """A whole HTTP answer with its own status: status header first, then one body."""
    record_status(status)
    await context.send_initial_metadata(((HTTP_STATUS_HEADER, str(status)), *headers.items()))
    yield httpbody_pb2.HttpBody(content_type=content_type, data=body)


def request_headers(context: Context) -> dict[str, str]:
    """The HTTP request headers, as Envoy passes them: lower-cased gRPC metadata."""
    return {key: str(value) for key, value in context.invocation_metadata() or ()}


def http_error(context: Context, error: ApiError) -> HttpStream:
    """An ordinary HTTP error answer with the OpenAI error body."""
    record_error(error)
    body = openai_http.error_json(error)
    return http_answer(context, error.status, openai_http.JSON, body, error.headers)


class ImageGenerationServicer(pb_grpc.ImageGenerationServicer):
    def __init__(
        self,
        pipeline: Pipeline,
        admission: Admission,
        keepalive_s: float,
        stopping: asyncio.Event | None = None,
        parser: BodyParser | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._admission = admission
        self._keepalive_s = keepalive_s
        self._parser = parser or BodyParser()
        # Set when the drain grace runs out: answers still under way end with an error.
        self._stopping = stopping or asyncio.Event()

    async def Generate(
        self, request: pb.ImageGenerationRequest, context: Context
    ) -> AsyncIterator[pb.ImageGenerationEvent]:
        async for event in self._typed_events(prepared(self._pipeline, request), context):
            yield event

    async def Edit(
        self, request: pb.ImageEditRequest, context: Context
    ) -> AsyncIterator[pb.ImageGenerationEvent]:
        async for event in self._typed_events(self._pipeline.prepare_edit(request), context):
            yield event

    async def _typed_events(
        self, plan_ready: Awaitable[Plan], context: Context
    ) -> AsyncIterator[pb.ImageGenerationEvent]:
        """The typed API's stream for a planned request; any failure aborts the RPC."""
        try:
            plan = await plan_ready
            await self._admission.admit(plan)
            async for event in self._pipeline.run(plan):
                yield converters.to_proto_event(event, plan)
        except Exception as exc:
            error = as_api_error(exc)
            record_error(error)
            await context.abort(error.grpc_code, error.message)

    async def GenerateHttp(self, request: httpbody_pb2.HttpBody, context: Context) -> HttpStream:
        headers = request_headers(context)
        try:
            typed = await self._parser.parse(generation_request, request.data, headers)
            plan = await prepared(self._pipeline, typed)
            await self._admission.admit(plan)
        except Exception as exc:
            async for message in http_error(context, as_api_error(exc)):
                yield message
            return
        async for message in self._answer(plan, typed.stream, context):
            yield message

    async def EditHttp(self, request: httpbody_pb2.HttpBody, context: Context) -> HttpStream:
        async for message in self._edit_http(request, context, variation=False):
            yield message

    async def VariationHttp(self, request: httpbody_pb2.HttpBody, context: Context) -> HttpStream:
        async for message in self._edit_http(request, context, variation=True):
            yield message

    async def _edit_http(
        self, request: httpbody_pb2.HttpBody, context: Context, variation: bool
    ) -> HttpStream:
        try:
            typed = await self._parser.parse(
                openai_edits.parse_edit_request, request.data, request.content_type,
                request_headers(context), variation, multipart.Limits(),
            )  # fmt: skip
            plan = await self._pipeline.prepare_edit(typed)
            await self._admission.admit(plan)
        except Exception as exc:
            async for message in http_error(context, as_api_error(exc)):
                yield message
            return
        async for message in self._answer(plan, typed.stream, context):
            yield message

    async def _answer(self, plan: Plan, stream: bool, context: Context) -> HttpStream:
        """The OpenAI answer to a prepared request: one JSON body, or SSE events."""
        if not stream:
            async for message in self._json(plan, context):
                yield message
            return
        # Closed explicitly: if the client goes away while a message is being written, the
        # stream's clean-up (cancelling Bedrock work) runs now, not when garbage is collected.
        async with contextlib.aclosing(self._sse(plan)) as events:
            async for message in events:
                yield message

    async def _json(self, plan: Plan, context: Context) -> HttpStream:
        try:
            images, failure = await self._unless_stopping(self._pipeline.collect(plan))
        except Exception as exc:
            async for message in http_error(context, as_api_error(exc)):
                yield message
            return
        if failure is not None:
            record_error(failure)  # 200 with the images that were paid for, and `incomplete`
        for number, chunk in enumerate(openai_http.response_json(plan, images, failure)):
            # Envoy takes the Content-Type from the first message only.
            yield httpbody_pb2.HttpBody(
                content_type=openai_http.JSON if number == 0 else "", data=chunk
            )

    async def _unless_stopping(self, work: Awaitable[T]) -> T:
        """The result of `work`, or a 503 if the drain grace runs out first."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():  # the grace ran out, or the client went away
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            raise grace_expired()
        return task.result()

    async def _sse(self, plan: Plan) -> SseStream:
        """SSE: a keepalive at once (Envoy sends headers with the first message), then events
        as they come and keepalives in between; errors after that point go in-band."""
        queue: asyncio.Queue[Event | ApiError | None] = asyncio.Queue()

        async def produce() -> None:
            try:
                async for event in self._pipeline.run(plan):
                    await queue.put(event)
                await queue.put(None)
            except Exception as exc:
                await queue.put(as_api_error(exc))

        producer = asyncio.create_task(produce())
        stop = asyncio.create_task(self._stopping.wait())

        def grace_over(task: asyncio.Task[Any]) -> None:
            if not task.cancelled():
                queue.put_nowait(grace_expired())

        stop.add_done_callback(grace_over)
        try:
            yield httpbody_pb2.HttpBody(content_type=openai_http.SSE, data=openai_http.KEEPALIVE)
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=self._keepalive_s)
                except TimeoutError:
                    metrics.SSE_KEEPALIVES.inc()
                    yield httpbody_pb2.HttpBody(data=openai_http.KEEPALIVE)
                    continue
                if item is None:
                    yield httpbody_pb2.HttpBody(data=openai_http.SSE_DONE)
                    return
                if isinstance(item, ApiError):
                    record_error(item)
                    yield httpbody_pb2.HttpBody(data=openai_http.sse_error(item))
                    return
                if isinstance(item, PartialImageEvent):
                    yield httpbody_pb2.HttpBody(data=openai_http.sse_partial(plan, item))
                elif isinstance(item, ImageEvent):
                    yield httpbody_pb2.HttpBody(data=openai_http.sse_completed(plan, item))
        finally:
            # The client may be gone: stop the pipeline, which cancels its Bedrock calls
            # (queued ones never start), and wait until it has, so nothing outlives the RPC.
            stop.cancel()
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)


class ModelsServicer(pb_grpc.ModelsServicer):
    def __init__(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    async def ListModelsHttp(
        self, request: pb.ListModelsHttpRequest, context: Context
    ) -> HttpStream:
        try:
            if request.model:
                body = openai_http.model_json(await self._catalog.entry(request.model))
            else:
                body = openai_http.model_list_json(await self._catalog.listing())
        except Exception as exc:
            async for message in http_error(context, as_api_error(exc)):
                yield message
            return
        yield httpbody_pb2.HttpBody(content_type=openai_http.JSON, data=body)


class McpServicer(pb_grpc.McpServicer):
    """POST/GET/DELETE /mcp: the MCP tools `openai_image_generation` and `openai_image_edit`
    over the pipeline."""

    def __init__(
        self,
        pipeline: Pipeline,
        admission: Admission,
        bucket: mcp.OwnBucket | None = None,
        parser: BodyParser | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._admission = admission
        self._bucket = bucket
        self._parser = parser or BodyParser()

    async def McpHttp(self, request: httpbody_pb2.HttpBody, context: Context) -> HttpStream:
        headers = request_headers(context)
        method = headers.get("x-envoy-original-method", "POST")
        reply = await mcp.handle(
            method, request.data, headers, self._generate, self._bucket, self._parser
        )
        answer = http_answer(context, reply.status, reply.content_type, reply.body, reply.headers)
        async for message in answer:
            yield message

    async def _generate(
        self, request: pb.ImageGenerationRequest | pb.ImageEditRequest
    ) -> tuple[Plan, list[ImageEvent], ApiError | None]:
        if isinstance(request, pb.ImageEditRequest):
            plan = await self._pipeline.prepare_edit(request)
        else:
            plan = await prepared(self._pipeline, request)
        await self._admission.admit(plan)
        images, failure = await self._pipeline.collect(plan)
        if failure is not None:
            record_error(failure)
        return plan, images, failure


class UsageReportServicer(pb_grpc.UsageReportServicer):
    """GET /v1/organization/usage/images: for keys marked admin (anyone when running open)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def UsageImagesHttp(self, request: pb.UsageRequest, context: Context) -> HttpStream:
        try:
            record = current_call()
            key = record.key if record else None
            if key is not None and not key.admin:
                raise ApiError(
                    403,
                    f"The API key '{key.name}' may not read the usage report "
                    '(an operator marks a key with "admin": true in API_KEYS_FILE).',
                    code="insufficient_permissions",
                )
            days, has_more = usage_report.days_of(request)
            rows = (
                await self._ledger.rows(days[0].isoformat(), days[-1].isoformat()) if days else []
            )
            body = orjson.dumps(usage_report.report(request, days, has_more, rows))
        except Exception as exc:
            async for message in http_error(context, as_api_error(exc)):
                yield message
            return
        yield httpbody_pb2.HttpBody(content_type=openai_http.JSON, data=body)
