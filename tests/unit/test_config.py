"""Settings: defaults, validation messages that name the variable, immutable defaults."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings

EMULATOR = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:4010"}


def test_defaults() -> None:
    settings = Settings.from_env(EMULATOR)
    assert (settings.grpc_port, settings.backend, settings.s3_bucket) == (50051, "emulator", "")
    assert settings.s3_url_expires_s == 3600
    assert settings.parse_workers == 1


@pytest.mark.parametrize(
    ("env", "variable"),
    [({"GRPC_PORT": "abc"}, "GRPC_PORT"), ({"S3_URL_EXPIRES": "604801"}, "S3_URL_EXPIRES"),
     ({"AWS_S3_ACCELERATE": "maybe"}, "AWS_S3_ACCELERATE"),
     ({"IMAGES_BACKEND": "gcp"}, "IMAGES_BACKEND"),
     ({"DEFAULT_MODEL_PARAMS": "{not json"}, "DEFAULT_MODEL_PARAMS"),
     ({"DEFAULT_MODEL_PARAMS": '{"m": 1}'}, "DEFAULT_MODEL_PARAMS"),
     ({"PARSE_WORKERS": "65"}, "PARSE_WORKERS"), ({"PARSE_WORKERS": "two"}, "PARSE_WORKERS")],
)  # fmt: skip
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**EMULATOR, **env})


def test_emulator_backend_needs_its_endpoint() -> None:
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        Settings.from_env({})
    aws = {"IMAGES_BACKEND": "aws", "ALLOW_UNAUTHENTICATED": "true"}
    assert Settings.from_env(aws).backend == "aws"


def test_default_model_params_are_read_only() -> None:
    settings = Settings.from_env(
        {**EMULATOR, "DEFAULT_MODEL_PARAMS": '{"stability.sd3-5-large-v1:0": {"seed": 5}}'}
    )
    defaults = settings.default_model_params["stability.sd3-5-large-v1:0"]
    with pytest.raises(TypeError):
        defaults["seed"] = 6  # type: ignore[index]
