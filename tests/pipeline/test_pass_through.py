"""No needless work per image: Bedrock's base64 goes out as-is when the format is unchanged.

The real pipeline against the emulator, with the Bedrock answers recorded on the way, so
each test compares what was sent with exactly what Bedrock returned.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Mapping
from typing import Any

import pytest
from PIL import Image

from service import converters, imaging, openai_http
from service.config import Settings
from service.pipeline import Event, ImageEvent, Invoker, Pipeline, Plan
from service.storage import ImageStore
from tests.model_ids import SD35, TITAN_V2
from tests.pipeline.conftest import make_request, run_async


class RecordingInvoker:
    """The real Bedrock client, keeping every parsed answer."""

    def __init__(self, inner: Invoker) -> None:
        self.inner = inner
        self.answers: list[dict[str, Any]] = []

    async def invoke(
        self, model: str, body: Mapping[str, Any], options: Mapping[str, str]
    ) -> dict[str, Any]:
        answer = await self.inner.invoke(model, body, options)
        self.answers.append(answer)
        return answer


@pytest.fixture
def recorded(pipeline: Pipeline, settings: Settings) -> tuple[Pipeline, RecordingInvoker]:
    invoker = RecordingInvoker(pipeline._bedrock)
    return Pipeline(invoker, ImageStore(settings), {}), invoker


def run(pipeline: Pipeline, **fields: Any) -> tuple[Plan, list[Event]]:
    plan = pipeline.prepare(make_request(fields))

    async def collect() -> list[Event]:
        return [event async for event in pipeline.run(plan)]

    return plan, run_async(collect())


def only_image(events: list[Event]) -> ImageEvent:
    images = [event for event in events if isinstance(event, ImageEvent)]
    assert len(images) == 1
    return images[0]


def test_unchanged_format_b64_json_sends_bedrocks_base64_as_is(
    recorded: tuple[Pipeline, RecordingInvoker],
) -> None:
    pipeline, bedrock = recorded
    plan, events = run(pipeline, model=TITAN_V2, prompt="a fox", size="1024x1024",
                       response_format="b64_json")  # fmt: skip
    sent_by_bedrock = bedrock.answers[0]["images"][0]
    image = only_image(events)
    # The very string Bedrock returned, never decoded nor re-encoded on the way.
    assert image.b64 is sent_by_bedrock
    assert (image.width, image.height) == (1024, 1024)
    body = b"".join(openai_http.response_json(plan, [image]))
    assert json.loads(body)["data"] == [{"b64_json": sent_by_bedrock}]
    assert image.image._data is None, "the HTTP answer decoded the image"
    # The typed gRPC API gets the decoded bytes.
    typed = converters.to_proto_event(image, plan)
    assert typed.image.data == base64.b64decode(sent_by_bedrock)
    assert Image.open(io.BytesIO(typed.image.data)).size == (1024, 1024)


def test_streamed_completed_event_carries_bedrocks_base64(
    recorded: tuple[Pipeline, RecordingInvoker],
) -> None:
    pipeline, bedrock = recorded
    plan, events = run(pipeline, model=SD35, prompt="a fox", output_format="jpeg", stream=True,
                       response_format="b64_json")  # fmt: skip
    image = only_image(events)
    assert image.b64 is bedrock.answers[0]["images"][0]
    frame = openai_http.sse_completed(plan, image)
    name, data = frame.decode().strip().split("\n")
    assert name == "event: image_generation.completed"
    payload = json.loads(data.removeprefix("data: "))
    assert payload["b64_json"] == bedrock.answers[0]["images"][0]
    assert payload["type"] == "image_generation.completed"
    assert payload["output_format"] == "jpeg"


def test_a_changed_format_is_re_encoded(recorded: tuple[Pipeline, RecordingInvoker]) -> None:
    pipeline, bedrock = recorded
    _, events = run(pipeline, model=TITAN_V2, prompt="a fox", size="512x512",
                    output_format="webp", response_format="b64_json")  # fmt: skip
    image = only_image(events)
    assert image.b64 != bedrock.answers[0]["images"][0]
    decoded = Image.open(io.BytesIO(base64.b64decode(image.b64)))
    assert (decoded.format, decoded.size) == ("WEBP", (512, 512))
    assert image.data == base64.b64decode(image.b64)


def test_header_size_reads_png_and_jpeg_headers_and_gives_up_on_a_long_webp() -> None:
    # Noise, so each file is far longer than the prefix header_size decodes.
    noise = Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3))
    for fmt, expected in (("PNG", (400, 300)), ("JPEG", (400, 300)), ("WEBP", None)):
        out = io.BytesIO()
        noise.save(out, fmt, quality=95)
        b64 = base64.b64encode(out.getvalue()).decode()
        assert len(b64) > imaging.HEADER_B64_CHARS
        assert imaging.header_size(b64) == expected


def test_header_size_of_something_that_is_not_an_image_is_none() -> None:
    assert imaging.header_size(base64.b64encode(b"not an image").decode()) is None
    assert imaging.header_size("%%% not base64") is None


def test_a_multi_megabyte_answer_goes_out_in_whole_chunks(pipeline: Pipeline) -> None:
    plan, events = run(pipeline, model=TITAN_V2, prompt="a fox", response_format="b64_json")
    big = base64.b64encode(os.urandom(3 * openai_http.CHUNK_BYTES)).decode()  # 4 MiB of text
    images = [
        only_image(events),
        ImageEvent(index=1, image=imaging.EncodedImage("png", 1024, 1024, b64=big), url=""),
    ]
    chunks = list(openai_http.response_json(plan, images))
    assert len(chunks) == 5
    assert all(len(chunk) == openai_http.CHUNK_BYTES for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= openai_http.CHUNK_BYTES
    answer = json.loads(b"".join(chunks))
    assert [item["b64_json"] for item in answer["data"]] == [images[0].b64, big]
    assert answer["usage"]["output_tokens"] == 2


def test_a_png_whose_header_is_broken_has_no_header_size() -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 32)).save(out, "PNG")
    png = bytearray(out.getvalue())
    assert imaging.header_size(base64.b64encode(png).decode()) == (64, 32)
    png[20] ^= 1  # the height, now disagreeing with the chunk's CRC
    assert imaging.header_size(base64.b64encode(bytes(png)).decode()) is None
