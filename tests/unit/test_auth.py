"""API keys: configuration forms, constant-time lookup, allowlists; origins; JSON logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from service import logs
from service.auth import KeyRing, bearer_token, check_model, hash_key, new_key
from service.config import ConfigError, Settings
from service.errors import ApiError
from service.interceptors import origin_allowed, request_id

EMULATOR = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:1"}


def test_api_keys_minimal_form_authenticates() -> None:
    key = new_key()
    settings = Settings.from_env({**EMULATOR, "API_KEYS": f"ci={hash_key(key)}, other={'a' * 64}"})
    ring = KeyRing(settings.api_keys)
    found = ring.authenticate(f"Bearer {key}")
    assert found is not None and found.name == "ci"
    assert hash_key(key) not in repr(settings)  # hashes stay out of reprs and logs
    for header in (None, "", "Bearer", f"Basic {key}", "Bearer sk-wrong", f"Bearer {key}x"):
        with pytest.raises(ApiError) as info:
            ring.authenticate(header)
        assert (info.value.status, info.value.code) == (401, "invalid_api_key")


def test_open_when_no_keys() -> None:
    assert KeyRing(()).authenticate(None) is None


def test_key_file_options(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    entry = {"name": "team-a", "sha256": hash_key("k"), "models": ["us.stability.sd3-5-large-v1:0"],
             "requests_per_minute": 2, "max_concurrent": 1, "budget_usd_per_day": 0.1}  # fmt: skip
    path.write_text(json.dumps({"keys": [entry]}))
    [key] = Settings.from_env({**EMULATOR, "API_KEYS_FILE": str(path)}).api_keys
    assert key.models == {"stability.sd3-5-large-v1:0"}
    assert (key.requests_per_minute, key.max_concurrent, key.budget_usd_per_day) == (2, 1, 0.1)
    check_model(key, "stability.sd3-5-large-v1:0")
    with pytest.raises(ApiError) as info:
        check_model(key, "amazon.nova-canvas-v1:0")
    assert info.value.status == 403 and "amazon.nova-canvas-v1:0" in info.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [("{", "not valid JSON"), ('{"keys": [{"name": "a"}]}', "sha256"),
     ('{"keys": [{"name": "a", "sha256": "zz"}]}', "64 hex"),
     (json.dumps({"keys": [{"name": "a", "sha256": "a" * 64, "rpm": 1}]}), "unknown option"),
     (json.dumps({"keys": [{"name": "a", "sha256": "a" * 64, "models": ["nope"]}]}), "nope"),
     (json.dumps({"keys": [{"name": "a", "sha256": "a" * 64, "max_concurrent": -1}]}),
      "negative")],
)  # fmt: skip
def test_bad_key_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="API_KEYS_FILE") as info:
        Settings.from_env({**EMULATOR, "API_KEYS_FILE": str(path)})
    assert message in str(info.value)


@pytest.mark.parametrize("raw", ["nohash", f"a={'a' * 63}", f"a={'a' * 64},a={'b' * 64}"])
def test_bad_api_keys_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="API_KEYS"):
        Settings.from_env({**EMULATOR, "API_KEYS": raw})


def test_aws_backend_refuses_to_run_open() -> None:
    with pytest.raises(ConfigError, match="ALLOW_UNAUTHENTICATED"):
        Settings.from_env({"IMAGES_BACKEND": "aws"})
    keyed = Settings.from_env({"IMAGES_BACKEND": "aws", "API_KEYS": f"a={'a' * 64}"})
    assert len(keyed.api_keys) == 1


def test_bearer_token() -> None:
    assert bearer_token("bearer  sk-1 ") == "sk-1"
    assert bearer_token("Token sk-1") is None


@pytest.mark.parametrize(
    ("origin", "loopback", "allowed"),
    [("", False, True), ("https://app.example.com", False, True),
     ("https://app.example.com/", False, True), ("https://evil.example", False, False),
     ("http://localhost:3000", False, False), ("http://localhost:3000", True, True),
     ("http://127.0.0.1", True, True), ("null", True, False)],
)  # fmt: skip
def test_origins(origin: str, loopback: bool, allowed: bool) -> None:
    assert origin_allowed(origin, ("https://app.example.com",), loopback) is allowed


def test_request_ids_are_kept_when_sane() -> None:
    assert request_id({"x-request-id": "abc-123"}) == "abc-123"
    for bad in ("", "x" * 200, "a b", "a\nb"):
        generated = request_id({"x-request-id": bad})
        assert generated != bad and len(generated) == 32


def test_json_log_lines_hide_credentials() -> None:
    record = logging.LogRecord("botocore", logging.DEBUG, "", 0, "%s", None, None)
    record.msg = "headers: {'Authorization': 'Bearer ABSK-secret-token', 'X-Amz-Date': 'x'}"
    line = json.loads(logs.JsonFormatter().format(record))
    assert "ABSK-secret-token" not in json.dumps(line)
    assert line["level"] == "debug" and line["logger"] == "botocore"
