"""S3 storage for `response_format=url`: upload, then a presigned GET URL.

Keys are random (a UUID under a date prefix), so they cannot collide and no request
input can steer them. With AWS_S3_ACCELERATE the URL uses the accelerate endpoint.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from service.config import ConfigError, Settings
from service.errors import ApiError

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class ImageStore:
    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self.expires_s = settings.s3_url_expires_s
        session = boto3.session.Session()
        # Without s3v4 a client with a custom endpoint presigns SigV2-style URLs.
        self._client = session.client(
            "s3",
            config=Config(signature_version="s3v4"),
            **settings.aws_client_args(),
        )
        self._presigner = (
            session.client(
                "s3",
                config=Config(signature_version="s3v4", s3={"use_accelerate_endpoint": True}),
                **settings.aws_client_args(),
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
        """Upload one image and return a presigned URL to it."""
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
        except (BotoCoreError, ClientError) as exc:
            raise ApiError(
                502, f"Storing the image in S3 failed: {exc}", code="storage_error"
            ) from exc
        return self._presign(key)

    def _presign(self, key: str) -> str:
        url: str = self._presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expires_s
        )
        return url
