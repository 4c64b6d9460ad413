"""Every edit model row through the real pipeline and the emulator: what each one needs, what
it returns, and the 400s that name the field when a request does not fit the row."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from emulator.bedrock import BedrockEmulator
from imagegen.v1 import images_pb2 as pb
from service.errors import ApiError
from service.pipeline import Event, ImageEvent, Pipeline, Plan
from tests.model_ids import NOVA, SD35, TITAN_V1, TITAN_V2
from tests.pipeline.conftest import run_async

BOX = (16, 16, 96, 80)


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def photo(size: tuple[int, int] = (320, 320), mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, size, (255, 255, 255))
    width, height = size
    image.paste((200, 30, 30), (width // 4, height // 4, width * 3 // 4, height * 3 // 4))
    return image


def openai_mask(size: tuple[int, int], box: tuple[int, int, int, int] = BOX) -> bytes:
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    return png(mask)


def edit_request(**fields: Any) -> pb.ImageEditRequest:
    extras = fields.pop("extra_params", None)
    images = fields.pop("image", [png(photo())])
    request = pb.ImageEditRequest(image=images, **fields)
    if extras:
        request.extra_params.update(extras)
    return request


def edit(pipeline: Pipeline, **fields: Any) -> tuple[Plan, list[Image.Image]]:
    plan = run_async(pipeline.prepare_edit(edit_request(response_format="b64_json", **fields)))

    async def collect() -> list[Event]:
        return [event async for event in pipeline.run(plan)]

    images = sorted((e for e in run_async(collect()) if isinstance(e, ImageEvent)),
                    key=lambda e: e.index)  # fmt: skip
    decoded: list[Image.Image] = []
    for image in images:
        opened = Image.open(io.BytesIO(image.data))
        opened.load()
        decoded.append(opened)
    return plan, decoded


def refused(pipeline: Pipeline, **fields: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        run_async(pipeline.prepare_edit(edit_request(response_format="b64_json", **fields)))
    return caught.value


def service(name: str) -> str:
    return f"stability.{name}"


# Each Stability service with a minimal valid request, and the size it must return.
SERVICES: list[tuple[str, dict[str, Any], tuple[int, int]]] = [
    ("stable-image-inpaint-v1:0", {"prompt": "sun", "mask": openai_mask((320, 320))}, (320, 320)),
    ("stable-outpaint-v1:0", {"extra_params": {"right": 100, "down": 20}}, (420, 340)),
    ("stable-image-search-replace-v1:0",
     {"prompt": "ball", "extra_params": {"search_prompt": "square"}}, (320, 320)),
    ("stable-image-search-recolor-v1:0",
     {"prompt": "green", "options": pb.EditOptions(select_prompt="square")}, (320, 320)),
    ("stable-image-erase-object-v1:0", {"mask": openai_mask((320, 320))}, (320, 320)),
    ("stable-image-remove-background-v1:0", {}, (320, 320)),
    ("stable-creative-upscale-v1:0", {"prompt": "sharp", "extra_params": {"creativity": 0.2}},
     (1280, 1280)),
    ("stable-conservative-upscale-v1:0", {"prompt": "sharp"}, (1280, 1280)),
    ("stable-fast-upscale-v1:0", {}, (1280, 1280)),
    ("stable-image-control-sketch-v1:0",
     {"prompt": "castle", "options": pb.EditOptions(control_strength=0.5)}, (320, 320)),
    ("stable-image-control-structure-v1:0", {"prompt": "castle"}, (320, 320)),
    ("stable-image-style-guide-v1:0",
     {"prompt": "cat", "extra_params": {"aspect_ratio": "16:9", "fidelity": 0.4}}, (1344, 768)),
    ("stable-style-transfer-v1:0", {"image": [png(photo()), png(photo((64, 64)))]}, (320, 320)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fields", "size"), SERVICES, ids=[s[0] for s in SERVICES])
def test_every_stability_service(
    pipeline: Pipeline, emulator: BedrockEmulator, name: str, fields: dict[str, Any],
    size: tuple[int, int],
) -> None:  # fmt: skip
    plan, [image] = edit(pipeline, model=service(name), **fields)
    assert image.size == size == plan.size
    # Bedrock serves the image services only through `us.` profiles.
    assert emulator.calls[-1].model_id == f"us.{service(name)}"
    assert plan.kind == "image_edit"


def test_the_stability_mask_is_white_where_openai_is_transparent(
    pipeline: Pipeline, emulator: BedrockEmulator
) -> None:
    edit(pipeline, model=service("stable-image-erase-object-v1:0"), mask=openai_mask((320, 320)))
    body = emulator.calls[-1].body
    assert body is not None
    mask = Image.open(io.BytesIO(base64.b64decode(str(body["mask"]))))
    assert mask.mode == "L"
    assert mask.getpixel((20, 20)) == 255 and mask.getpixel((200, 200)) == 0


def test_the_nova_mask_is_black_where_openai_is_transparent(
    pipeline: Pipeline, emulator: BedrockEmulator
) -> None:
    edit(pipeline, model=NOVA, prompt="sun", mask=openai_mask((320, 320)))
    body = emulator.calls[-1].body
    assert body is not None and body["taskType"] == "INPAINTING"
    params = body["inPaintingParams"]
    assert isinstance(params, dict)
    mask = Image.open(io.BytesIO(base64.b64decode(params["maskImage"])))
    assert mask.getpixel((20, 20)) == 0 and mask.getpixel((200, 200)) == 255


def test_inpaint_without_a_mask_uses_the_image_transparency(pipeline: Pipeline) -> None:
    source = photo(mode="RGBA")
    source.paste((0, 0, 0, 0), BOX)
    _, [image] = edit(pipeline, model=service("stable-image-inpaint-v1:0"), prompt="sun",
                      image=[png(source)], extra_params={"grow_mask": 0})  # fmt: skip
    assert image.getchannel("A").getpixel((20, 20)) == 255  # filled in
    assert image.convert("RGB").getpixel((200, 200)) == (200, 30, 30)  # untouched


@pytest.mark.parametrize("model", [NOVA, TITAN_V2])
def test_amazon_tasks(pipeline: Pipeline, model: str) -> None:
    size = (320, 320)
    _, [outpainted] = edit(pipeline, model=model, prompt="sea", mask=openai_mask(size),
                           options=pb.EditOptions(task_type="OUTPAINTING",
                                                  outpainting_mode="PRECISE"))  # fmt: skip
    assert outpainted.size == size
    plan, [cut_out] = edit(pipeline, model=model,
                           options=pb.EditOptions(task_type="BACKGROUND_REMOVAL"))  # fmt: skip
    assert cut_out.mode == "RGBA" and cut_out.getchannel("A").getpixel((1, 1)) == 0
    assert plan.background == "transparent"
    _, varied = edit(pipeline, model=model, variation=True, n=3, size="512x512",
                     image=[png(photo()), png(photo((400, 320)))],
                     options=pb.EditOptions(similarity_strength=0.9))  # fmt: skip
    assert [image.size for image in varied] == [(512, 512)] * 3
    _, [by_text] = edit(pipeline, model=model, prompt="a hat",
                        options=pb.EditOptions(mask_prompt="the square"))  # fmt: skip
    assert by_text.size == size


def test_sd35_variation_needs_a_prompt_and_uses_strength(
    pipeline: Pipeline, emulator: BedrockEmulator
) -> None:
    assert refused(pipeline, model=SD35, variation=True).param == "prompt"
    _, [image] = edit(pipeline, model=SD35, variation=True, prompt="a painting")
    assert image.size == (320, 320)
    body = emulator.calls[-1].body
    assert body is not None
    assert (body["mode"], body["strength"]) == ("image-to-image", 0.6)


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"model": service("stable-outpaint-v1:0")}, "left", "at least one of left"),
        ({"model": service("stable-image-inpaint-v1:0"), "prompt": "x"}, "mask", "transparent"),
        ({"model": service("stable-fast-upscale-v1:0"), "image": [png(photo((20, 20)))]},
         "image", "each side at least 32 px"),
        ({"model": service("stable-fast-upscale-v1:0"), "image": [png(photo((2000, 200)))]},
         "image", "at most 1536 px"),
        ({"model": service("stable-fast-upscale-v1:0"), "size": "512x512"}, "size", "1280x1280"),
        ({"model": service("stable-image-remove-background-v1:0"), "n": 2}, "n", "at most 1"),
        ({"model": service("stable-style-transfer-v1:0")}, "image", "takes 2 input image"),
        ({"model": service("stable-fast-upscale-v1:0"), "quality": "hd"}, "quality", "hd"),
        ({"model": service("stable-image-inpaint-v1:0"), "prompt": "x",
          "mask": openai_mask((320, 320), (0, 0, 0, 0))}, "mask", "marks nothing"),
        ({"model": service("stable-image-inpaint-v1:0"), "prompt": "x",
          "mask": png(Image.new("L", (320, 320)))}, "mask", "no alpha channel"),
        ({"model": service("stable-fast-upscale-v1:0"), "image": [png(photo(), "GIF")]},
         "image", "gif"),
        ({"model": service("stable-fast-upscale-v1:0"), "input_fidelity": "max"},
         "input_fidelity", "high"),
        ({"model": NOVA, "prompt": "x", "mask": openai_mask((320, 320)),
          "options": pb.EditOptions(similarity_strength=0.5)}, "similarity_strength", "INPAINTING"),
        ({"model": NOVA, "options": pb.EditOptions(task_type="OUTPAINTING")}, "mask", "needs"),
        ({"model": NOVA, "image": [png(photo((200, 200)))]}, "image", "at least 320 px"),
        ({"model": TITAN_V1, "variation": True, "image": [png(photo())] * 2}, "image", "1 input"),
        ({"model": TITAN_V1, "options": pb.EditOptions(task_type="BACKGROUND_REMOVAL")},
         "task_type", "must be one of"),
        ({"model": NOVA, "variation": True, "size": "1000x1000"}, "size", "multiple of 16"),
        ({"model": "stability.stable-image-core-v1:1"}, "model", "does not edit"),
        ({"model": service("stable-fast-upscale-v1:0"), "variation": True}, "model", "variations"),
        ({"model": service("stable-fast-upscale-v1:0"), "image": [png(photo())] * 17},
         "image", "At most 16"),
    ],
)  # fmt: skip
def test_requests_that_do_not_fit_the_row_are_400s(
    pipeline: Pipeline, fields: dict[str, Any], param: str, words: str
) -> None:
    error = refused(pipeline, **fields)
    assert (error.status, error.param) == (400, param), error.message
    assert words in error.message


def test_unknown_model_is_a_404(pipeline: Pipeline) -> None:
    error = refused(pipeline, model="stability.no-such-service-v1:0")
    assert (error.status, error.code) == (404, "model_not_found")


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (service("stable-image-inpaint-v1:0"), {"mask": openai_mask((320, 320))}),
        (NOVA, {"mask": openai_mask((320, 320))}),
    ],
)
def test_content_filter_is_a_content_policy_violation(
    pipeline: Pipeline, model: str, fields: dict[str, Any]
) -> None:
    plan = run_async(pipeline.prepare_edit(
        edit_request(model=model, prompt="sun [[fault:filter]]", response_format="b64_json",
                     **fields)
    ))  # fmt: skip
    with pytest.raises(ApiError) as caught:
        run_async(pipeline.collect(plan))
    assert (caught.value.status, caught.value.code) == (400, "content_policy_violation")
