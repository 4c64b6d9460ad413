"""MODEL_ALIASES: OpenAI model names resolved to Bedrock models, and a bad table refused."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.auth import check_model, hash_key
from service.catalog import ModelCatalog
from service.config import ConfigError, Settings
from service.errors import ApiError
from service.interceptors import CallRecord, observe
from service.mcp import tool_definition
from service.models import aliases
from service.models.aliases import CORE, DEFAULT_ALIASES, INPAINT, SD35, ULTRA, parse_aliases
from service.models.registry import check_default_params, resolve, resolve_edit
from service.regions import RegionRouter

EMULATOR = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "http://127.0.0.1:1"}


@pytest.fixture
def table() -> Iterator[None]:
    """Tests that install a table of their own leave the built-in one behind."""
    yield
    aliases.use(parse_aliases(dict(DEFAULT_ALIASES)))


def settings(**env: str) -> Settings:
    return Settings.from_env(EMULATOR | env)


def test_default_table_maps_openai_names_to_living_stability_models() -> None:
    table = settings().model_aliases
    assert set(table) == {"dall-e-2", "dall-e-3", "gpt-image-1-mini", "gpt-image-1",
                          "gpt-image-1.5", "gpt-image-2"}  # fmt: skip
    assert table["gpt-image-1"].targets == {"generations": CORE, "edits": INPAINT}
    assert table["gpt-image-2"].targets["generations"] == ULTRA
    assert table["dall-e-2"].targets["variations"] == SD35
    assert "edits" not in table["dall-e-3"].targets  # dall-e-3 never edited


def test_alias_resolves_to_its_model_and_is_invoked_by_the_models_id() -> None:
    resolved = resolve(" gpt-image-1 ")
    assert (resolved.spec.model_id, resolved.invoke_id, resolved.alias) == (
        CORE,
        CORE,
        "gpt-image-1",
    )
    edit = resolve_edit("gpt-image-1")
    assert (edit.spec.model_id, edit.invoke_id) == (INPAINT, f"us.{INPAINT}")
    assert resolve_edit("dall-e-2", variation=True).spec.model_id == SD35
    assert resolve(CORE).alias == ""  # a real id is no alias


def test_alias_without_a_model_for_the_endpoint_is_400_naming_what_it_serves() -> None:
    with pytest.raises(ApiError) as info:
        resolve_edit("dall-e-3")
    assert (info.value.status, info.value.param, info.value.code) == (
        400,
        "model",
        "model_not_supported",
    )
    assert CORE in info.value.message and "MODEL_ALIASES" in info.value.message
    with pytest.raises(ApiError) as info:
        resolve_edit("gpt-image-1", variation=True)
    assert info.value.status == 400


def test_configured_table_replaces_the_builtin_one(table: None) -> None:
    configured = settings(MODEL_ALIASES=json.dumps({
        "house-style": {"generations": SD35, "edits": SD35},
        "fast": CORE,
    })).model_aliases  # fmt: skip
    # A plain id serves every endpoint its model serves: SD3.5 generates, edits and varies.
    assert configured["house-style"].targets == {"generations": SD35, "edits": SD35}
    assert configured["fast"].targets == {"generations": CORE}
    aliases.use(configured)
    assert resolve("house-style").spec.model_id == SD35
    with pytest.raises(ApiError) as info:
        resolve("gpt-image-1")
    assert info.value.status == 404 and "house-style" in info.value.message
    assert settings(MODEL_ALIASES="{}").model_aliases == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "MODEL_ALIASES is not valid JSON"),
        ('["gpt-image-1"]', "MODEL_ALIASES must be a JSON object"),
        ('{"gpt-image-1": "stability.nope-v9"}',
         "MODEL_ALIASES['gpt-image-1']: unknown model 'stability.nope-v9'"),
        (json.dumps({CORE: ULTRA}), f"MODEL_ALIASES['{CORE}']: '{CORE}' is a Bedrock model id"),
        (json.dumps({f"us.{CORE}": ULTRA}), "is a Bedrock model id"),
        (json.dumps({"my-edit": {"edits": CORE}}),
         f"MODEL_ALIASES['my-edit']['edits']: {CORE} does not serve /v1/images/edits"),
        (json.dumps({"x": {"generate": CORE}}),
         "MODEL_ALIASES['x']['generate']: the endpoints are generations, edits, variations"),
        ('{"x": 3}', "MODEL_ALIASES['x']: expected a model id or an object"),
        ('{"x": {}}', "MODEL_ALIASES['x']: expected a model id or an object"),
        (json.dumps({" x": CORE}), "an alias is 1-128 characters"),
    ],
)  # fmt: skip
def test_bad_table_stops_start_up_naming_the_entry(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(MODEL_ALIASES=raw)
    assert message in str(info.value)


def test_prices_name_bedrock_models_not_aliases() -> None:
    with pytest.raises(ConfigError) as info:
        settings(IMAGE_PRICES='{"gpt-image-1": 0.01}')
    assert "IMAGE_PRICES" in str(info.value) and CORE in str(info.value)
    # Once the alias is gone from the table, the same name is just an unknown model.
    with pytest.raises(ConfigError, match="unknown model 'gpt-image-1'"):
        settings(IMAGE_PRICES='{"gpt-image-1": 0.01}', MODEL_ALIASES="{}")


def test_key_allowlists_name_bedrock_models_not_aliases(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    entry = {"name": "web", "sha256": hash_key("k"), "models": ["gpt-image-1"]}
    path.write_text(json.dumps({"keys": [entry]}))
    with pytest.raises(ConfigError) as info:
        settings(API_KEYS_FILE=str(path))
    assert "API_KEYS_FILE" in str(info.value) and "alias" in str(info.value)
    # A key allowed the model may use it under its OpenAI name: admission checks the model run.
    path.write_text(json.dumps({"keys": [entry | {"models": [CORE]}]}))
    [key] = settings(API_KEYS_FILE=str(path)).api_keys
    check_model(key, resolve("gpt-image-1").spec.model_id)
    with pytest.raises(ApiError):
        check_model(key, resolve("gpt-image-2").spec.model_id)  # Ultra


def test_mcp_tool_offers_the_aliases() -> None:
    models = tool_definition()["inputSchema"]["properties"]["model"]["enum"]
    assert CORE in models and "gpt-image-1" in models and "dall-e-3" in models


def test_access_log_line_names_the_alias_and_the_model(caplog: pytest.LogCaptureFixture) -> None:
    record = CallRecord("/imagegen.v1.ImageGeneration/GenerateHttp", model=CORE,
                        alias="gpt-image-1")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="service.access"):
        observe(record)
    fields = caplog.records[-1].fields  # type: ignore[attr-defined]
    assert (fields["model"], fields["alias"]) == (CORE, "gpt-image-1")


def test_default_params_keyed_by_alias_must_fit_every_model_it_names(table: None) -> None:
    check_default_params({"gpt-image-1": {"negative_prompt": "blurry"}})  # Core and Inpaint
    with pytest.raises(ConfigError) as info:  # aspect_ratio: Core has it, Inpaint does not
        check_default_params({"gpt-image-1": {"aspect_ratio": "16:9"}})
    assert "DEFAULT_MODEL_PARAMS['gpt-image-1']" in str(info.value)
    assert "aspect_ratio" in str(info.value)
    check_default_params({"dall-e-3": {"aspect_ratio": "16:9"}})  # generations only


class _Listing:
    async def __call__(self, region: str) -> list[dict[str, object]]:
        return [{"modelId": CORE}, {"modelId": SD35}]


def test_models_api_lists_aliases_whose_model_bedrock_offers() -> None:
    catalog = ModelCatalog(_Listing(), RegionRouter("us-east-1", {}))
    listing = asyncio.run(catalog.listing())
    named = {entry.alias: entry.spec.model_id for entry in listing if entry.alias}
    # Ultra is not offered here, so gpt-image-1.5 and gpt-image-2 are not listed.
    assert named == {"dall-e-2": CORE, "dall-e-3": CORE, "gpt-image-1-mini": CORE,
                     "gpt-image-1": CORE}  # fmt: skip
    entry = asyncio.run(catalog.entry("gpt-image-1"))
    assert (entry.alias, entry.spec.model_id) == ("gpt-image-1", CORE)
    assert asyncio.run(catalog.entry(CORE)).alias == ""


def test_service_refuses_to_start_with_a_bad_table() -> None:
    """`python -m service` itself: the operator sees the entry, not a traceback."""
    env = EMULATOR | {"MODEL_ALIASES": '{"gpt-image-1": "stability.nope-v9"}', "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "MODEL_ALIASES['gpt-image-1']: unknown model 'stability.nope-v9'" in done.stderr
    assert "Traceback" not in done.stderr
