"""Each Bedrock call goes to its model's region (read from the emulator's call record, which
takes it from the SigV4 credential scope); S3 URLs are signed for the bucket's region."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulator.bedrock import BedrockEmulator
from emulator.s3 import LocalS3
from service.config import Settings
from service.pipeline import Pipeline
from service.storage import ImageStore
from tests.model_ids import CORE_1, NOVA, SD35, ULTRA_1
from tests.pipeline.conftest import generate, run_async


@pytest.mark.parametrize(
    ("model", "region"), [(CORE_1, "us-west-2"), (ULTRA_1, "us-west-2"), (SD35, "us-west-2"),
                          (NOVA, "us-east-1")]
)  # fmt: skip
def test_calls_go_to_the_models_region(
    pipeline: Pipeline, emulator: BedrockEmulator, model: str, region: str
) -> None:
    generate(pipeline, model=model, prompt="a lighthouse", n=1)
    assert [(call.model_id, call.region) for call in emulator.calls][-1] == (model, region)


def test_presigned_urls_are_signed_for_the_buckets_region(settings: Settings) -> None:
    with LocalS3(port=0, bucket="us-images") as s3, pytest.MonkeyPatch.context() as patch:
        s3.client().create_bucket(
            Bucket="eu-images", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        patch.setenv("AWS_ENDPOINT_URL_S3", s3.url)
        store = ImageStore(replace(settings, s3_bucket="eu-images"))
        url = run_async(store.put(b"\x89PNG-bytes", "png"))
        credential = parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
        assert (store.region, credential.split("/")[2]) == ("eu-west-1", "eu-west-1")
        assert httpx.get(url, timeout=10).content == b"\x89PNG-bytes"
