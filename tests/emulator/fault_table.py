"""The wire error each error fault must produce (Bedrock reference, section 1.5)."""

ERROR_FAULTS = [
    ("throttle", 429, "ThrottlingException"),
    ("not_ready", 429, "ModelNotReadyException"),
    ("unavailable", 503, "ServiceUnavailableException"),
    ("internal", 500, "InternalServerException"),
    ("access_denied", 403, "AccessDeniedException"),
    ("not_found", 404, "ResourceNotFoundException"),
    ("quota", 400, "ServiceQuotaExceededException"),
    ("model_timeout", 408, "ModelTimeoutException"),
    ("model_error", 424, "ModelErrorException"),
]
