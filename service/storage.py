"""S3 storage for `response_format=url`: upload, then a presigned GET URL.

Keys are random (a UUID under a date prefix), so they cannot collide and no request
input can steer them. With AWS_S3_ACCELERATE the URL uses the accelerate endpoint.

URLs are signed for the bucket's own region, asked from S3 at start-up (HeadBucket's
x-amz-bucket-region), whatever AWS_REGION is: a URL signed for another region is sent to
the global endpoint, which answers 307 to the regional one, and the signature no longer
matches there (403).

An upload is retried a bounded number of times (botocore standard mode, short timeouts);
if it still fails, `StorageUnavailable` tells the pipeline to deliver the image inline
instead: Bedrock has already been paid for it. What failed (endpoint, bucket, key) goes to
the log with the request id, never to the client.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from service.config import ConfigError, Settings
from service.interceptors import current_call

log = logging.getLogger(__name__)

# Attempts per upload (the first included), and per-attempt timeouts: a failing S3 costs
# the client seconds, not minutes, before its image comes inline.
UPLOAD_ATTEMPTS = 3
UPLOAD_CONFIG = Config(
    signature_version="s3v4",
    retries={"mode": "standard", "total_max_attempts": UPLOAD_ATTEMPTS},
    connect_timeout=3,
    read_timeout=20,
)

# One quick attempt: start-up must not hang on an unreachable S3 (uploads retry later).
REGION_PROBE_CONFIG = Config(
    signature_version="s3v4", retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5
)

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class StorageUnavailable(Exception):
    """The image could not be stored after the bounded retries."""


class ImageStore:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.expires_s = settings.s3_url_expires_s
        session = boto3.session.Session()
        self.region = bucket_region(session, settings)
        client_args = settings.aws_client_args() | {"region_name": self.region}
        # Without s3v4 a client with a custom endpoint presigns SigV2-style URLs.
        self._client = session.client("s3", config=UPLOAD_CONFIG, **client_args)
        self._presigner = (
            session.client(
                "s3",
                config=Config(signature_version="s3v4", s3={"use_accelerate_endpoint": True}),
                **client_args,
            )
            if settings.s3_accelerate
            else self._client
        )
        try:  # presigning is offline: this catches a bad combination at start-up
            self._presign("startup-check")
        except BotoCoreError as exc:
            raise ConfigError(
                f"S3 settings (AWS_S3_ACCELERATE, AWS_ENDPOINT_URL_S3): {exc}"
            ) from None

    async def put(self, data: bytes, output_format: str) -> str:
        """Upload one image and return a presigned URL to it (or raise StorageUnavailable)."""
        return await asyncio.to_thread(self._put, data, output_format)

    def _put(self, data: bytes, output_format: str) -> str:
        key = f"images/{datetime.now(UTC):%Y/%m/%d}/{uuid.uuid4().hex}.{output_format}"
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=CONTENT_TYPES[output_format],
            )
            return self._presign(key)
        except (BotoCoreError, ClientError) as exc:
            call = current_call()
            log.warning(
                "request %s: storing s3://%s/%s failed after %d attempts: %s",
                call.request_id if call else "-", self.bucket, key, UPLOAD_ATTEMPTS, exc,
            )  # fmt: skip
            raise StorageUnavailable from exc

    def _presign(self, key: str) -> str:
        url: str = self._presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expires_s
        )
        return url


def bucket_region(session: boto3.session.Session, settings: Settings) -> str:
    """The bucket's region as S3 reports it (also on a 403), else AWS_REGION."""
    probe = session.client("s3", config=REGION_PROBE_CONFIG, **settings.aws_client_args())
    try:
        try:
            answer = probe.head_bucket(Bucket=settings.s3_bucket)
        except ClientError as exc:
            answer = exc.response
        except BotoCoreError as exc:
            log.warning(
                "cannot ask S3 for the region of bucket %s (%s); signing URLs for %s",
                settings.s3_bucket, exc, settings.aws_region,
            )  # fmt: skip
            return settings.aws_region
        headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return str(headers.get("x-amz-bucket-region") or settings.aws_region)
    finally:
        probe.close()
