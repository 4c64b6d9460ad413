"""OpenTelemetry traces: a server span per request, a client span per Bedrock call.

Off unless the standard variables ask for it: OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OTLP over HTTP/protobuf), or OTEL_TRACES_EXPORTER=otlp
or console; OTEL_SDK_DISABLED=true wins. The SDK reads the rest itself (OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, headers, sampler). Without a provider the API's tracer is a no-op.
Bedrock spans carry the GenAI semantic-convention attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

tracer = trace.get_tracer("imagegen")

PROVIDER = "aws.bedrock"
EXPORTERS = ("otlp", "console", "none")


def enabled(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def configure(env: Mapping[str, str]) -> TracerProvider | None:
    """Install the SDK's provider when tracing is asked for (called once at start-up)."""
    if not enabled(env):
        return None
    exporter: SpanExporter
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # heavy: only if used
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter()
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "bedrock-images"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


@contextmanager
def bedrock_span(
    operation: str, model_id: str, input_tokens: int, images: int
) -> Iterator[trace.Span]:
    """The client span of one Bedrock InvokeModel call (GenAI semantic conventions); errors
    are recorded on it by the SDK as the exception leaves."""
    attributes: dict[str, str | int] = {
        "gen_ai.operation.name": operation,  # image_generation or image_edit
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.request.model": model_id,
        "gen_ai.request.choice.count": images,
        "gen_ai.usage.input_tokens": input_tokens,
    }
    with tracer.start_as_current_span(
        f"{operation} {model_id}", kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span
