"""The real pipeline (boto3, S3 uploads, Pillow) against an in-process emulator and local S3.

No Envoy and no gRPC here: these tests cover the parameter table fast. boto3 finds the
emulator through its standard AWS_ENDPOINT_URL_* variables, as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from emulator.bedrock import BedrockEmulator
from emulator.s3 import LocalS3
from imagegen.v1 import images_pb2 as pb
from service.bedrock import Bedrock
from service.config import Settings
from service.pipeline import Event, ImageEvent, PartialImageEvent, Pipeline, Plan, UsageEvent
from service.storage import ImageStore

BUCKET = "pipeline-tests"
T = TypeVar("T")
# One event loop for the whole session, as in the service: clients made on it stay usable.
_runner = asyncio.Runner()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    return _runner.run(coroutine)


@pytest.fixture(scope="session")
def emulator() -> Iterator[BedrockEmulator]:
    with BedrockEmulator(port=0) as running:
        yield running


@pytest.fixture(scope="session")
def settings(emulator: BedrockEmulator) -> Iterator[Settings]:
    with LocalS3(port=0, bucket=BUCKET) as s3, pytest.MonkeyPatch.context() as patch:
        env = {
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": emulator.url,
            "AWS_ENDPOINT_URL_S3": s3.url,
            "AWS_S3_BUCKET": BUCKET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "BEDROCK_MAX_ATTEMPTS": "1",
        }
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
        yield Settings.from_env(env)


@pytest.fixture(scope="session")
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    bedrock = Bedrock(settings)
    yield Pipeline(bedrock, ImageStore(settings), settings.default_model_params)
    run_async(bedrock.close())


@dataclass
class Outcome:
    plan: Plan
    events: list[Event]

    @property
    def images(self) -> list[ImageEvent]:
        return sorted((e for e in self.events if isinstance(e, ImageEvent)), key=lambda e: e.index)

    @property
    def previews(self) -> list[PartialImageEvent]:
        return [e for e in self.events if isinstance(e, PartialImageEvent)]

    @property
    def usage(self) -> UsageEvent:
        last = self.events[-1]
        assert isinstance(last, UsageEvent)
        return last


def make_request(fields: dict[str, Any]) -> pb.ImageGenerationRequest:
    fields = dict(fields)
    extras = fields.pop("extra_params", None)
    bedrock = fields.pop("bedrock", None)
    request = pb.ImageGenerationRequest(**fields)
    if extras:
        request.extra_params.update(extras)
    if bedrock:
        request.bedrock.CopyFrom(pb.BedrockOptions(**bedrock))
    return request


def generate(pipeline: Pipeline, **fields: Any) -> Outcome:
    plan = pipeline.prepare(make_request(fields))

    async def collect() -> list[Event]:
        return [event async for event in pipeline.run(plan)]

    return Outcome(plan, run_async(collect()))
