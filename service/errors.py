"""The one error type clients see, and the table that maps it to HTTP and gRPC.

Every failure the service reports is an `ApiError`: an OpenAI error body (message, type,
param, code) plus the HTTP status an OpenAI SDK maps to the right exception. Typed gRPC
callers get the matching status code with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

# HTTP status -> (OpenAI error type, gRPC status code).
_STATUS_TABLE: dict[int, tuple[str, grpc.StatusCode]] = {
    400: ("invalid_request_error", grpc.StatusCode.INVALID_ARGUMENT),
    401: ("authentication_error", grpc.StatusCode.UNAUTHENTICATED),
    403: ("permission_error", grpc.StatusCode.PERMISSION_DENIED),
    404: ("not_found_error", grpc.StatusCode.NOT_FOUND),
    405: ("invalid_request_error", grpc.StatusCode.UNIMPLEMENTED),
    408: ("timeout_error", grpc.StatusCode.DEADLINE_EXCEEDED),
    413: ("invalid_request_error", grpc.StatusCode.INVALID_ARGUMENT),
    415: ("invalid_request_error", grpc.StatusCode.INVALID_ARGUMENT),
    431: ("invalid_request_error", grpc.StatusCode.INVALID_ARGUMENT),
    429: ("rate_limit_error", grpc.StatusCode.RESOURCE_EXHAUSTED),
    499: ("request_cancelled", grpc.StatusCode.CANCELLED),
    500: ("server_error", grpc.StatusCode.INTERNAL),
    502: ("upstream_error", grpc.StatusCode.UNAVAILABLE),
    503: ("service_unavailable", grpc.StatusCode.UNAVAILABLE),
    504: ("timeout_error", grpc.StatusCode.DEADLINE_EXCEEDED),
}


class ApiError(Exception):
    """A client-visible failure with an OpenAI-shaped body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.error_type = error_type or _STATUS_TABLE.get(status, ("server_error",))[0]
        # Extra HTTP response headers of this answer (Retry-After, x-ratelimit-*).
        self.headers: Mapping[str, str] = headers or {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with all its fields: body parse workers (service/parse_pool.py) raise it.
        return (_rebuild, (self.status, self.message, self.param, self.code, self.error_type,
                           dict(self.headers)))  # fmt: skip

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return _STATUS_TABLE.get(self.status, ("", grpc.StatusCode.UNKNOWN))[1]

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


def _rebuild(
    status: int,
    message: str,
    param: str | None,
    code: str | None,
    error_type: str,
    headers: dict[str, str],
) -> ApiError:
    return ApiError(status, message, param=param, code=code, error_type=error_type, headers=headers)


def invalid_param(param: str, message: str, code: str = "invalid_value") -> ApiError:
    """A 400 naming the offending request parameter."""
    return ApiError(400, message, param=param, code=code)
