"""OpenAI model names end to end: the official SDK (and a typed gRPC caller) name
`gpt-image-1`, the emulator receives the Bedrock model it maps to, and the answer says so."""

from __future__ import annotations

import base64
import io

import grpc
import openai
import pytest
from PIL import Image

from imagegen.v1 import images_pb2 as pb
from imagegen.v1 import images_pb2_grpc as pb_grpc
from service.models.aliases import CORE, INPAINT, ULTRA
from stack.local import LocalStack
from tests.e2e.test_edits import openai_mask, photo, png


def test_sdk_generates_with_gpt_image_1_through_its_mapped_model(
    client: openai.OpenAI, stack: LocalStack
) -> None:
    raw = client.images.with_raw_response.generate(
        model="gpt-image-1", prompt="a red fox", size="1536x1024", response_format="b64_json"
    )
    assert raw.headers["x-bedrock-model"] == CORE
    result = raw.parse()
    assert result.data and result.data[0].b64_json
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.size == (1216, 832)  # Core's 3:2 size: the Stability model drew it
    assert [call.model_id for call in stack.emulator.calls] == [CORE]


def test_models_api_lists_aliases_with_the_model_they_map_to(client: openai.OpenAI) -> None:
    listed = {model.id: model for model in client.models.list()}
    assert (listed["gpt-image-1"].model_extra or {})["alias_for"] == CORE
    assert (listed["gpt-image-2"].model_extra or {})["alias_for"] == ULTRA
    assert "alias_for" not in (listed[CORE].model_extra or {})
    retrieved = client.models.retrieve("gpt-image-2")
    assert (retrieved.id, (retrieved.model_extra or {})["alias_for"]) == ("gpt-image-2", ULTRA)


def test_edit_with_an_alias_is_an_inpaint(client: openai.OpenAI, stack: LocalStack) -> None:
    size = (256, 192)
    raw = client.images.with_raw_response.edit(
        model="gpt-image-1", prompt="a blue square", response_format="b64_json",
        image=("photo.png", png(photo(size)), "image/png"),
        mask=("mask.png", png(openai_mask(size, (64, 48, 192, 144))), "image/png"),
    )  # fmt: skip
    assert raw.headers["x-bedrock-model"] == f"us.{INPAINT}"
    assert raw.parse().data
    assert [call.model_id for call in stack.emulator.calls] == [f"us.{INPAINT}"]


def test_grpc_caller_names_an_alias_and_learns_the_model(stack: LocalStack) -> None:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = pb_grpc.ImageGenerationStub(channel)
        call = stub.Generate(
            pb.ImageGenerationRequest(model="gpt-image-2", prompt="a fox",
                                      response_format="b64_json"),
            timeout=30,
        )  # fmt: skip
        events = list(call)
        assert dict(call.initial_metadata())["x-bedrock-model"] == ULTRA
    assert [event.WhichOneof("event") for event in events] == ["image", "usage"]
    assert [c.model_id for c in stack.emulator.calls] == [ULTRA]


def test_alias_without_an_edit_model_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.images.edit(
            model="dall-e-3", prompt="x", image=("photo.png", png(photo()), "image/png")
        )
    assert info.value.code == "model_not_supported"
    assert CORE in info.value.message
