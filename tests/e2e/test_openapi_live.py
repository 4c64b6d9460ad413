"""The OpenAPI document checked against the live edge by schemathesis.

Requests generated from the document (valid and invalid ones) go through Envoy to the
service; every answer must have a documented status, content type and body, and none is
a 5xx. The image parts of edit and variation forms (their `encoding` names image/png,
image/jpeg and image/webp) are real images: small, of a few sizes and modes, so the edits
that reach the emulator stay fast, and now and then bytes that are no image at all (a
documented 400). `make fuzz` runs more examples (OPENAPI_EXAMPLES).
"""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.render import OPENAPI
from stack.local import LocalStack

EXAMPLES = int(os.environ.get("OPENAPI_EXAMPLES", "8"))
FORM = "multipart/form-data"

# Sides the edit models take (64 px at least; Nova and Titan 320), little work for the emulator.
SIZES = [(64, 64), (96, 64), (64, 128), (128, 128), (320, 320)]
# Served edit models, put into some of the generated forms so that those reach the emulator.
EDIT_MODELS = [
    "us.stability.stable-image-remove-background-v1:0",
    "us.stability.stable-image-search-recolor-v1:0",
    "stability.sd3-5-large-v1:0",
    "amazon.nova-canvas-v1:0",
    "amazon.titan-image-generator-v2:0",
]
MODES = ["RGB", "RGBA", "L", "P"]
NOT_AN_IMAGE = [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40]


def encoded(image_format: str, mode: str, size: tuple[int, int], shade: int) -> bytes:
    picture = Image.new("RGB", size, (shade, 255 - shade, shade // 2)).convert(mode)
    if image_format == "JPEG" and mode in ("RGBA", "P"):
        picture = picture.convert("RGB")  # JPEG has no alpha and no palette
    out = io.BytesIO()
    picture.save(out, image_format)
    return out.getvalue()


def images(image_format: str) -> st.SearchStrategy[bytes]:
    pictures = st.builds(
        encoded,
        st.just(image_format),
        st.sampled_from(MODES),
        st.sampled_from(SIZES),
        st.integers(0, 255),
    )
    return st.one_of(pictures, pictures, pictures, st.sampled_from(NOT_AN_IMAGE))


for media_type, image_format in (("image/png", "PNG"), ("image/jpeg", "JPEG"),
                                 ("image/webp", "WEBP")):  # fmt: skip
    schemathesis.openapi.media_type(media_type, images(image_format))

schema = schemathesis.openapi.from_path(str(OPENAPI))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@schema.parametrize()
@SETTINGS
def test_the_edge_answers_as_documented(case: schemathesis.Case[Any], stack: LocalStack) -> None:
    case.call_and_validate(
        base_url=stack.envoy.url,
        headers={"Authorization": "Bearer test-key"},
        timeout=30,
        checks=CHECKS,
    )


@pytest.mark.parametrize("path", ["/v1/images/edits", "/v1/images/variations"])
def test_edit_forms_with_images_answer_as_documented(stack: LocalStack, path: str) -> None:
    """The forms alone (the run above draws JSON bodies for most edit cases), most of them
    naming a served model and holding an image, so that edits of small images reach the
    emulator."""
    forms = schema[path]["POST"].as_strategy(media_type=FORM)
    forms = forms.filter(lambda case: case.media_type == FORM)  # media_type only prefers it

    @given(case=forms, model=st.sampled_from([None, *EDIT_MODELS]), image=images("PNG"))
    @SETTINGS
    def answers_as_documented(
        case: schemathesis.Case[Any], model: str | None, image: bytes
    ) -> None:
        if model and isinstance(case.body, dict):
            case.body.update(model=model, prompt="a small red fox")
            if "image" not in case.body and "image[]" not in case.body:
                case.body["image"] = image  # type: ignore[assignment]  # a form part
        case.call_and_validate(
            base_url=stack.envoy.url,
            headers={"Authorization": "Bearer test-key"},
            timeout=30,
            checks=CHECKS,
        )

    answers_as_documented()
