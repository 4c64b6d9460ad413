"""Local S3 for ``response_format=url``: moto's S3 API server on loopback, plus one bucket.

boto3 reaches it through ``AWS_ENDPOINT_URL_S3`` (or ``endpoint_url=``), so presigned URLs
point at it and download the stored object, as they would from AWS.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer


class LocalS3:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        bucket: str = "bedrock-images-local",
        region: str = "us-east-1",
    ) -> None:
        self.host = host
        self.port = port  # the bound port once started (port 0 picks a free one)
        self.bucket = bucket
        self.region = region
        self._server: ThreadedMotoServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("local S3 is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalS3:
        # Imported here: moto takes about a second to import, and only this needs it.
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self._server = server
        self.port = server.get_host_and_port()[1]
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self) -> Any:  # an S3 client; typed only where boto3-stubs are installed
        """A boto3 S3 client for this server (dummy credentials: moto does not check them)."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
