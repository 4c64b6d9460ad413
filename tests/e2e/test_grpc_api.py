"""The typed gRPC API: Generate events, health checking and server reflection."""

from __future__ import annotations

import io
from collections.abc import Iterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from stack.local import LocalStack


@pytest.fixture
def channel(stack: LocalStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        yield channel


def test_generate_streams_typed_events(channel: grpc.Channel) -> None:
    stub = pb_grpc.ImageGenerationStub(channel)
    request = pb.ImageGenerationRequest(
        model="amazon.nova-canvas-v1:0", prompt="a red fox", n=2, size="512x512",
        response_format="b64_json", partial_images=2,
    )  # fmt: skip
    events = list(stub.Generate(request, timeout=30))
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds.count("partial_image") == 4
    assert kinds.count("image") == 2
    assert kinds[-1] == "usage"
    images = [event.image for event in events if event.HasField("image")]
    assert sorted(image.index for image in images) == [0, 1]
    for image in images:
        assert Image.open(io.BytesIO(image.data)).size == (512, 512)
        assert (image.width, image.height, image.output_format) == (512, 512, "png")
    usage = events[-1].usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (3, 2, 5)


def test_generate_invalid_argument_status(channel: grpc.Channel) -> None:
    stub = pb_grpc.ImageGenerationStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Generate(pb.ImageGenerationRequest(model="amazon.nova-canvas-v1:0", n=0,
                                                     prompt="x")))  # fmt: skip
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'n'" in (info.value.details() or "")


def test_health_reports_serving(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "imagegen.v1.ImageGeneration"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [reply] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {service.name for service in reply.list_services_response.service}
    assert {"imagegen.v1.ImageGeneration", "imagegen.v1.Models", "grpc.health.v1.Health"} <= names


def test_prometheus_metrics(stack: LocalStack, channel: grpc.Channel) -> None:
    stub = pb_grpc.ImageGenerationStub(channel)
    request = pb.ImageGenerationRequest(
        model="us.amazon.nova-canvas-v1:0", prompt="a fox", size="320x320", output_format="webp"
    )
    list(stub.Generate(request, timeout=30))
    text = httpx.get(f"http://127.0.0.1:{stack.ports.metrics}/metrics", timeout=5).text
    assert 'imagegen_images_total{model="amazon.nova-canvas-v1:0",output_format="webp"}' in text
    assert 'imagegen_bedrock_calls_total{model="amazon.nova-canvas-v1:0",outcome="ok"}' in text
    assert (
        'imagegen_rpcs_total{method="/imagegen.v1.ImageGeneration/Generate",'
        'model="amazon.nova-canvas-v1:0",outcome="ok",status="200"}'
    ) in text
