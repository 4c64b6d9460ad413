"""Logging set-up: one JSON object per line, and no secrets at any level.

The access log line (`service.access`) carries its fields under `extra={"fields": ...}`;
every other record becomes {"time", "level", "logger", "message"}. At LOG_LEVEL=debug,
botocore and urllib3 would write request headers (SigV4 signatures, the Bedrock API key
as `Authorization: Bearer ...`) and bodies (prompts, images): they stay at INFO or above,
and a filter masks anything that looks like a credential in whatever is still written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

# Libraries that log credentials or payloads at DEBUG.
NOISY_LOGGERS = (
    "botocore", "boto3", "urllib3", "s3transfer", "aiobotocore", "aiohttp", "grpc", "PIL",
)  # fmt: skip
_SECRETS = (
    # Authorization / security-token header values (up to the end of the quoted value).
    re.compile(
        r"(?i)((?:authorization|x-amz-security-token|aws_secret_access_key)['\"]?\s*[:=]\s*"
        r"['\"]?)[^'\"\n]+"
    ),
    re.compile(r"(?i)(bearer\s+|signature=)[^\s'\",&]+"),
)


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(r"\1[REDACTED]", text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
