"""Pipeline events -> typed `ImageGenerationEvent` messages for gRPC callers."""

from __future__ import annotations

from imagegen.v1 import images_pb2 as pb
from service.pipeline import Event, ImageEvent, PartialImageEvent, Plan


def to_proto_event(event: Event, plan: Plan) -> pb.ImageGenerationEvent:
    if isinstance(event, PartialImageEvent):
        return pb.ImageGenerationEvent(
            created=plan.created,
            partial_image=pb.PartialImage(
                index=event.index,
                partial_image_index=event.partial_image_index,
                data=event.data,
                output_format=event.output_format,
                width=event.width,
                height=event.height,
            ),
        )
    if isinstance(event, ImageEvent):
        return pb.ImageGenerationEvent(
            created=plan.created,
            image=pb.Image(
                index=event.index,
                # A caller that asked for a URL gets the URL, not megabytes it did not want.
                data=b"" if event.url else event.data,
                url=event.url,
                output_format=event.output_format,
                width=event.width,
                height=event.height,
            ),
        )
    usage = event.usage
    return pb.ImageGenerationEvent(
        created=plan.created,
        usage=pb.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
        ),
    )
