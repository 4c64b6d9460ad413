"""Local S3 for ``response_format=url``: moto's S3 API server on loopback, plus one bucket.

boto3 reaches it through ``AWS_ENDPOINT_URL_S3`` (or ``endpoint_url=``), so presigned URLs
point at it and download the stored object, as they would from AWS.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import boto3

START_TIMEOUT_S = 30.0


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
        self._server: Any = None  # moto's ThreadedMotoServer once started

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("local S3 is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalS3:
        server = _bounded_moto_server(self.host, self.port)
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


def _bounded_moto_server(host: str, port: int) -> Any:
    """moto's threaded server, started or failed within START_TIMEOUT_S.

    moto's own start() waits, without a bound, for its thread to bind the port; when the bind
    fails (a port taken between choosing it and binding it, as parallel tests may do) the
    thread exits and start() would wait forever."""
    from moto.server import ThreadedMotoServer  # here: it takes about a second to import

    failures: list[BaseException] = []

    class Server(ThreadedMotoServer):  # type: ignore[misc]  # moto ships no type hints
        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as exc:  # werkzeug exits (SystemExit) when the port is taken
                failures.append(exc)
                self._server_ready_event.set()

    server = Server(ip_address=host, port=port, verbose=False)
    starting = threading.Thread(target=server.start, daemon=True)
    starting.start()
    starting.join(START_TIMEOUT_S)
    if failures or starting.is_alive():
        reason = f"could not listen ({failures[0]!r})" if failures else "did not start in time"
        raise RuntimeError(f"local S3 on {host}:{port} {reason}; is the port in use?")
    return server
