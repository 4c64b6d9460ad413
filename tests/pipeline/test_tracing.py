"""OpenTelemetry spans of one request, read back from an in-memory exporter: the server span
of the RPC (with the caller's trace as parent) and a client span per Bedrock call."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from service import tracing
from service.config import Settings
from service.server import ImageServer
from tests.pipeline.conftest import run_async

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process; the service's tracer follows it
    yield exporter
    provider.shutdown()


def test_tracing_is_off_without_otel_variables() -> None:
    assert not tracing.enabled({})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing.enabled({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing.enabled({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})


def generate(settings: Settings, request: pb.ImageGenerationRequest) -> list[str]:
    async def run() -> list[str]:
        server = ImageServer(dataclasses.replace(settings, grpc_port=0, metrics_port=0))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = pb_grpc.ImageGenerationStub(channel)
                parent = (("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01"),)
                call = stub.Generate(request, metadata=parent, timeout=30)
                return [event.WhichOneof("event") async for event in call]
        finally:
            await server.stop()

    return run_async(run())


def test_server_and_bedrock_spans(settings: Settings, spans: InMemorySpanExporter) -> None:
    request = pb.ImageGenerationRequest(model="amazon.nova-canvas-v1:0", prompt="a red fox",
                                        n=6, size="320x320")  # fmt: skip
    kinds = generate(settings, request)
    assert kinds.count("image") == 6
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    [server] = [s for s in finished if s.kind == trace.SpanKind.SERVER]
    clients = [s for s in finished if s.kind == trace.SpanKind.CLIENT]
    assert server.name == "Generate"
    assert format(server.context.trace_id, "032x") == TRACE_ID  # the caller's trace goes on
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 200
    assert len(clients) == 2  # Nova Canvas makes at most 5 images per call
    for span in clients:
        attributes = dict(span.attributes or {})
        assert span.name == "image_generation amazon.nova-canvas-v1:0"
        assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert attributes["gen_ai.operation.name"] == "image_generation"
        assert attributes["gen_ai.provider.name"] == "aws.bedrock"
        assert attributes["gen_ai.request.model"] == "amazon.nova-canvas-v1:0"
        assert attributes["gen_ai.usage.input_tokens"] == 3
        assert attributes["gen_ai.response.id"]  # Bedrock's x-amzn-RequestId
    produced = [int(str(dict(s.attributes or {})["gen_ai.usage.output_tokens"])) for s in clients]
    assert sorted(produced) == [1, 5]
