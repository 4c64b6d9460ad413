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
from urllib.parse import unquote, urlsplit

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
KEY_PREFIX = "images/"  # every key this service writes starts so


class StorageUnavailable(Exception):
    """The image could not be stored (or read back) after the bounded retries."""


class StoredImageMissing(Exception):
    """No object under that key (never written, or deleted by a lifecycle rule)."""


class StoredImageTooLarge(Exception):
    """The object is larger than the caller's bound."""


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
        self._url_prefixes = self._own_url_prefixes()

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

    def own_key(self, url: str) -> str | None:
        """The key of an image of this service's bucket that `url` names, else None.

        Accepted: `s3://BUCKET/images/...` and URLs of the form this service hands out
        (presigned or not; the query is ignored). The URL is only compared, never fetched:
        a caller cannot make the service contact another host.
        """
        parts = urlsplit(url.strip())
        if parts.scheme.lower() == "s3":
            key = unquote(parts.path.removeprefix("/"))
            owned = parts.netloc == self.bucket
        else:
            address = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
            prefix = next((p for p in self._url_prefixes if address.startswith(p)), None)
            owned = prefix is not None
            key = unquote(address[len(prefix) :]) if prefix is not None else ""
        return key if owned and key.startswith(KEY_PREFIX) and len(key) > len(KEY_PREFIX) else None

    def _own_url_prefixes(self) -> tuple[str, ...]:
        """What precedes the key in this service's URLs, from both clients' own presigning."""
        probe = f"{KEY_PREFIX}probe"
        prefixes = []
        for client in (self._client, self._presigner):
            parts = urlsplit(client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": probe}, ExpiresIn=60
            ))  # fmt: skip
            address = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
            prefixes.append(address.removesuffix(probe))
        return tuple(prefixes)

    async def get(self, key: str, max_bytes: int) -> bytes:
        """The bytes of one stored object of at most `max_bytes` (raises StoredImageMissing,
        StoredImageTooLarge or StorageUnavailable)."""
        return await asyncio.to_thread(self._get, key, max_bytes)

    def _get(self, key: str, max_bytes: int) -> bytes:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
            with answer["Body"] as body:
                if answer.get("ContentLength", 0) > max_bytes:
                    raise StoredImageTooLarge
                data: bytes = body.read(max_bytes + 1)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StoredImageMissing from None
            log.warning("reading s3://%s/%s failed: %s", self.bucket, key, exc)
            raise StorageUnavailable from exc
        except BotoCoreError as exc:
            log.warning("reading s3://%s/%s failed: %s", self.bucket, key, exc)
            raise StorageUnavailable from exc
        if len(data) > max_bytes:
            raise StoredImageTooLarge
        return data

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
