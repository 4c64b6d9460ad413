"""Local S3 (moto server mode) and ``python -m emulator`` as separate processes use them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

from emulator.s3 import LocalS3


def test_local_s3_serves_presigned_downloads() -> None:
    with LocalS3(port=0, bucket="images-test") as s3:
        assert s3.url.startswith("http://127.0.0.1:")
        client = boto3.client(
            "s3",
            endpoint_url=s3.url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
            # Without s3v4, boto3 presigns a custom endpoint SigV2-style.
            config=Config(signature_version="s3v4"),
        )
        client.put_object(Bucket="images-test", Key="a/b.png", Body=b"png bytes")
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": "images-test", "Key": "a/b.png"}, ExpiresIn=60
        )
        assert "X-Amz-Signature=" in url
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.read() == b"png bytes"


def read_endpoints(process: subprocess.Popen[str], count: int) -> dict[str, str]:
    assert process.stdout is not None
    lines = [process.stdout.readline().strip() for _ in range(count)]
    return dict(line.split("=", 1) for line in lines)


def runtime_client(url: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "EMULATOR_LATENCY_S": "0.2"}
    env.pop("AWS_BEARER_TOKEN_BEDROCK", None)
    command = [sys.executable, "-m", "emulator", "--port", "0", "--s3-port", "0"]
    command += ["--s3-bucket", "cli-bucket"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
        try:
            endpoints = read_endpoints(process, 4)
            assert (
                endpoints["AWS_ENDPOINT_URL_BEDROCK"]
                == (endpoints["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"])
            )
            assert endpoints["AWS_S3_BUCKET"] == "cli-bucket"

            started = time.monotonic()
            response = runtime_client(endpoints["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"]).invoke_model(
                modelId="stability.stable-image-core-v1:1", body=json.dumps({"prompt": "p"})
            )
            assert json.loads(response["body"].read())["finish_reasons"] == [None]
            assert time.monotonic() - started >= 0.2  # EMULATOR_LATENCY_S applies

            s3 = boto3.client(
                "s3",
                endpoint_url=endpoints["AWS_ENDPOINT_URL_S3"],
                region_name="us-east-1",
                aws_access_key_id="x",
                aws_secret_access_key="y",
            )
            assert s3.head_bucket(Bucket="cli-bucket")["ResponseMetadata"]["HTTPStatusCode"] == 200
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
