"""The one pipeline behind both faces: validate, plan the Bedrock calls, run them, emit events.

Generations and edits are two kinds of request on it: `prepare()` and `prepare_edit()` plan
them (each with its adapter tables), `run()` and `collect()` serve both alike.
`prepare()` does every check that can fail before any work starts, so the HTTP face can
still answer a plain 400. `run()` starts the Bedrock calls concurrently (bounded by the
Bedrock pool) and yields each image as soon as its call returns, previews first. Closing
the event stream (client gone, deadline passed) cancels every call not yet finished.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.json_format import MessageToDict

from imagegen.v1 import images_pb2 as pb
from service import imaging, metrics, tracing, usage
from service.edit_images import EditArea, image_tokens, load_image
from service.errors import ApiError, invalid_param
from service.interceptors import record_images
from service.models.base import BedrockCall, GenerationParams, deep_merge
from service.models.edit import EditParams
from service.models.registry import ResolvedEdit, ResolvedModel, resolve, resolve_edit
from service.storage import StorageUnavailable
from service.validation import CommonParams, validate

log = logging.getLogger(__name__)

MAX_EDIT_IMAGES = 16  # as OpenAI's edits endpoint
MAX_BEDROCK_BODY_BYTES = 25_000_000  # InvokeModel's limit
# Fields an edit shares with a generation, validated by the same rules.
_SHARED_FIELDS = ("prompt", "model", "size", "quality", "response_format", "output_format",
                  "background", "user", "safety_identifier")  # fmt: skip
_SHARED_OPTIONAL = ("n", "output_compression", "partial_images")


class Invoker(Protocol):
    async def invoke(
        self, model: str, body: Mapping[str, Any], options: Mapping[str, str]
    ) -> dict[str, Any]: ...


class Store(Protocol):
    async def put(self, data: bytes, output_format: str) -> str:
        """A URL to the stored image; raises StorageUnavailable when storing failed."""
        ...


# Told to the client (next to the image) when its URL could not be made.
STORAGE_NOTICE = (
    "The image could not be stored for a URL (storage is unavailable), so it is delivered "
    "inline as b64_json instead."
)


@dataclass(frozen=True)
class Plan:
    """A validated request and the Bedrock calls that will answer it."""

    common: CommonParams
    params: GenerationParams | EditParams
    model: ResolvedModel | ResolvedEdit
    calls: list[BedrockCall]
    size: tuple[int, int]
    native_format: str
    input_tokens: int  # text and input images
    created: int
    kind: str = "image_generation"  # or "image_edit": names the SSE events
    image_tokens: int = 0
    background: str = "opaque"  # "transparent" when the result has alpha

    @property
    def usage(self) -> usage.Usage:
        """Usage of the whole request: every image it asked for was produced."""
        return usage.Usage(self.input_tokens, self.common.n, self.image_tokens)


@dataclass(frozen=True)
class PartialImageEvent:
    index: int
    partial_image_index: int
    data: bytes
    output_format: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageEvent:
    index: int
    image: imaging.EncodedImage  # kept with a URL too, for the renderers to choose
    url: str  # set when response_format is url
    usage: usage.Usage | None = None  # set on the request's last image only
    # Set when a URL was asked for but storage failed: the image is delivered inline.
    notice: str = ""

    @property
    def data(self) -> bytes:
        return self.image.data

    @property
    def b64(self) -> str:
        return self.image.b64

    @property
    def output_format(self) -> str:
        return self.image.output_format

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


@dataclass(frozen=True)
class UsageEvent:
    usage: usage.Usage


Event = PartialImageEvent | ImageEvent | UsageEvent


class Pipeline:
    def __init__(
        self,
        bedrock: Invoker,
        store: Store | None,
        default_model_params: Mapping[str, Mapping[str, Any]],
        calls_per_request: int = 4,
    ) -> None:
        self._bedrock = bedrock
        self._store = store
        self._defaults = default_model_params
        self._calls_per_request = calls_per_request

    def prepare(self, request: pb.ImageGenerationRequest) -> Plan:
        """Every check that can fail before Bedrock is called (raises ApiError)."""
        common = validate(request, has_bucket=self._store is not None)
        model = resolve(common.model)
        # Server-wide defaults first, request values win; the defaults are never mutated.
        defaults = self._defaults.get(common.model) or self._defaults.get(model.spec.model_id, {})
        params = GenerationParams(
            model_id=model.spec.model_id,
            invoke_id=model.invoke_id,
            prompt=common.prompt,
            n=common.n,
            size=common.size,
            quality=common.quality,
            style=common.style,
            output_format=common.output_format,
            extras=deep_merge(dict(defaults), common.extras),
        )
        calls = model.family.build_calls(params)
        return Plan(
            common=common,
            params=params,
            model=model,
            calls=calls,
            size=model.family.output_size(params),
            native_format=model.family.native_format(params),
            input_tokens=usage.count_tokens(common.prompt),
            created=int(time.time()),
        )

    async def prepare_edit(self, request: pb.ImageEditRequest) -> Plan:
        """`prepare()` for an edit or variation; decoding the images runs off the event loop."""
        return await asyncio.to_thread(self._plan_edit, request)

    def _plan_edit(self, request: pb.ImageEditRequest) -> Plan:
        shared = pb.ImageGenerationRequest(
            **{name: getattr(request, name) for name in _SHARED_FIELDS},
            **{name: getattr(request, name) for name in _SHARED_OPTIONAL if request.HasField(name)},
            bedrock=request.bedrock,
            extra_params=request.extra_params if request.HasField("extra_params") else None,
        )
        common = validate(shared, has_bucket=self._store is not None, prompt_required=False)
        if request.input_fidelity.strip().lower() not in ("", "high", "low"):
            raise invalid_param("input_fidelity", "'input_fidelity' must be 'high' or 'low'.")
        model = resolve_edit(common.model, request.variation)
        if not request.image:
            raise invalid_param(
                "image",
                "'image' is required: upload the image to edit (png, jpeg or webp).",
                code="missing_required_parameter",
            )
        if len(request.image) > MAX_EDIT_IMAGES:
            raise invalid_param(
                "image", f"At most {MAX_EDIT_IMAGES} images per request; got {len(request.image)}."
            )
        names = ["image"] if len(request.image) == 1 else [
            f"image[{index}]" for index in range(len(request.image))
        ]  # fmt: skip
        images = tuple(
            load_image(data, name) for data, name in zip(request.image, names, strict=True)
        )
        area = EditArea.from_openai_mask(request.mask, images[0]) if request.mask else None
        # The image services exist only for edits, so their DEFAULT_MODEL_PARAMS are edit
        # options; those of models that also generate are generation parameters.
        defaults = (
            self._defaults.get(common.model) or self._defaults.get(model.spec.model_id, {})
            if model.spec.profile_only
            else {}
        )
        options = deep_merge(dict(defaults), common.extras)
        options |= MessageToDict(request.options, preserving_proto_field_name=True)
        params = EditParams(
            model_id=model.spec.model_id,
            invoke_id=model.invoke_id,
            prompt=common.prompt,
            n=common.n,
            size=common.size,
            quality=common.quality,
            output_format=common.output_format,
            images=images,
            area=area,
            variation=request.variation,
            options=options,
        )
        calls = model.family.build_calls(params)
        body_bytes = len(json.dumps(calls[0].body))
        if body_bytes > MAX_BEDROCK_BODY_BYTES:
            raise ApiError(
                413,
                f"The images make a Bedrock request of {body_bytes} bytes; Bedrock accepts at "
                f"most {MAX_BEDROCK_BODY_BYTES}. Send smaller images.",
                param="image",
                code="request_too_large",
            )
        image_input = sum(image_tokens(image) for image in images)
        return Plan(
            common=common,
            params=params,
            model=model,
            calls=calls,
            size=model.family.output_size(params),
            native_format=model.family.native_format(params),
            input_tokens=usage.count_tokens(common.prompt) + image_input,
            created=int(time.time()),
            kind="image_edit",
            image_tokens=image_input,
            background="transparent" if model.family.transparent(params) else "opaque",
        )

    async def run(self, plan: Plan) -> AsyncIterator[Event]:
        """Yield previews and images as calls finish, then usage once.

        When a call fails, calls not yet sent are dropped, calls already at Bedrock (and
        billed) still deliver their images, and then the first failure is raised.
        """
        # One request may not take the whole Bedrock pool; calls beyond this bound wait
        # here (not in the pool), so a cancelled or failed request never starts them.
        gate = asyncio.Semaphore(self._calls_per_request)
        give_up = asyncio.Event()
        tasks = [
            asyncio.create_task(self._invoke(plan, call, gate, give_up)) for call in plan.calls
        ]
        produced = 0
        failure: ApiError | None = None
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    call, images = await next_done
                except ApiError as exc:
                    failure = failure or exc
                    continue
                record_images(len(images))  # billed by Bedrock, whatever happens next
                for offset, b64 in enumerate(images):
                    produced += 1
                    last = produced == plan.common.n
                    async for event in self._finish_image(
                        plan, call.first_index + offset, b64, last
                    ):
                        yield event
            if failure is not None:
                raise failure
            yield UsageEvent(plan.usage)
        finally:
            # Whatever stopped us (error, cancelled client), no call keeps running for nothing.
            for task in tasks:
                task.cancel()

    async def collect(self, plan: Plan) -> tuple[list[ImageEvent], ApiError | None]:
        """All images of a request, in order, for answers that are not streamed.

        A failure after some images were produced comes back next to them (they were paid
        for); a failure with no image at all is raised.
        """
        images: list[ImageEvent] = []
        failure: ApiError | None = None
        try:
            async for event in self.run(plan):
                if isinstance(event, ImageEvent):
                    images.append(event)
        except ApiError as exc:
            if not images:
                raise
            log.warning("delivering %d of %d images: %s", len(images), plan.common.n, exc)
            failure = exc
        return sorted(images, key=lambda image: image.index), failure

    async def _invoke(
        self, plan: Plan, call: BedrockCall, gate: asyncio.Semaphore, give_up: asyncio.Event
    ) -> tuple[BedrockCall, list[str]]:
        try:
            async with gate:
                if give_up.is_set():  # a sibling failed: do not pay for more images
                    return call, []
                with tracing.bedrock_span(plan.kind, plan.model.spec.model_id, plan.input_tokens,
                                          call.image_count) as span:  # fmt: skip
                    payload = await self._bedrock.invoke(
                        plan.model.invoke_id, call.body, plan.common.bedrock_options
                    )
                    images = plan.model.read_images(payload)
                    span.set_attribute("gen_ai.usage.output_tokens", len(images))
            if len(images) != call.image_count:
                raise ApiError(
                    502,
                    f"{plan.model.spec.model_id} returned {len(images)} images, "
                    f"expected {call.image_count}.",
                    code="model_error",
                )
        except ApiError:
            give_up.set()  # set before a queued call, woken by the gate, gets to run
            raise
        return call, images

    async def _finish_image(
        self, plan: Plan, index: int, b64: str, last: bool
    ) -> AsyncIterator[Event]:
        common = plan.common
        image = await self._encoded(plan, b64)
        # Previews and the upload both start now and run side by side, off the event loop.
        frames = (
            asyncio.ensure_future(asyncio.to_thread(imaging.previews, image, common.partial_images))
            if common.partial_images
            else None
        )
        upload = None
        if common.response_format == "url":
            assert self._store is not None  # validate() refuses url without a bucket
            upload = asyncio.ensure_future(self._store.put(image.data, image.output_format))
        try:
            for number, frame in enumerate(await frames if frames else ()):
                yield PartialImageEvent(
                    index, number, frame, image.output_format, image.width, image.height
                )
            url, notice = await self._stored(upload) if upload else ("", "")
        finally:
            for task in (frames, upload):
                if task is not None:
                    task.cancel()
        metrics.IMAGES.labels(plan.model.spec.model_id, image.output_format).inc()
        yield ImageEvent(index=index, image=image, url=url,
                         usage=plan.usage if last else None, notice=notice)  # fmt: skip

    @staticmethod
    async def _stored(upload: asyncio.Future[str]) -> tuple[str, str]:
        """The image's URL, or (no URL, a notice) when storage failed: it was paid for, so
        it is delivered inline rather than lost."""
        try:
            return await upload, ""
        except StorageUnavailable:
            return "", STORAGE_NOTICE

    async def _encoded(self, plan: Plan, b64: str) -> imaging.EncodedImage:
        """The finished image; Bedrock's own base64 when its format is what was asked for.

        Bytes are decoded (off the loop) only when something needs them here: an S3
        upload, previews, or a re-encode.
        """
        common = plan.common
        needs_bytes = common.response_format == "url" or common.partial_images > 0
        unchanged = imaging.passes_through(
            plan.native_format, common.output_format, common.output_compression
        )
        size = imaging.header_size(b64) if unchanged and not needs_bytes else None
        if size is not None:
            return imaging.EncodedImage(common.output_format, *size, b64=b64)
        return await asyncio.to_thread(
            imaging.finalize,
            b64,
            plan.native_format,
            common.output_format,
            common.output_compression,
            needs_bytes,
        )
