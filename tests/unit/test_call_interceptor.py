"""The call interceptor when gRPC abandons a handler at a yield (the client left mid-write).

grpc.aio then stops iterating the handler's generator; the event loop closes it later from
another task. The call must be counted as cancelled (499), not as a server error, and the
tracing context must not be detached from the wrong context.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2

from service.interceptors import CallInterceptor

METHOD = "/imagegen.v1.Models/ListModelsHttp"


class Context:
    """What the interceptor uses of grpc.aio's ServicerContext."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    async def send_initial_metadata(self, metadata: Any) -> None:
        pass

    def code(self) -> grpc.StatusCode | None:
        return None


async def models(request: Any, context: Any) -> AsyncIterator[httpbody_pb2.HttpBody]:
    yield httpbody_pb2.HttpBody(content_type="application/json", data=b'{"data": []}')
    yield httpbody_pb2.HttpBody(data=b"")  # never reached: the client is gone


async def abandoned_call() -> None:
    details: Any = SimpleNamespace(method=METHOD)  # what the interceptor reads of the call

    async def continuation(details: Any) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_stream_rpc_method_handler(models)

    handler = await CallInterceptor().intercept_service(continuation, details)
    call = handler.unary_stream(None, Context())
    # The RPC's own task reads the first message, then gRPC stops: the write failed.
    await asyncio.create_task(call.__anext__())
    # Closed from another task, with a context of its own, as the event loop's finaliser does.
    await asyncio.create_task(call.aclose(), context=contextvars.Context())


def test_an_abandoned_call_is_cancelled_and_its_trace_context_left_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        asyncio.run(abandoned_call())
    # The access log line's fields (passed as `extra`): one line, a cancelled call.
    access = [
        vars(record)["fields"] for record in caplog.records if record.name == "service.access"
    ]
    assert [(fields["outcome"], fields["status"]) for fields in access] == [("cancelled", 499)]
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []
