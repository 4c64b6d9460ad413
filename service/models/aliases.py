"""OpenAI model names (`gpt-image-1`, `dall-e-3`, ...) and the Bedrock models that serve them.

Tools with a fixed model list (Open WebUI, chat front-ends, agents) send OpenAI's names. An
alias names one Bedrock model per endpoint it serves (generations, edits, variations); the
registry swaps the alias for that model before anything else looks at the request, so every
face (HTTP, gRPC, MCP) resolves aliases alike and the rest of the service only ever sees
real Bedrock model ids. `MODEL_ALIASES` (service/config.py) replaces `DEFAULT_ALIASES`.

Why the defaults (README, "OpenAI model names"): Stability AI is the only living image family
on Bedrock. The retired and small OpenAI tiers map to Stable Image Core (0.04 USD an image,
about what they cost at OpenAI at their default quality); OpenAI's current flagships map to
Stable Image Ultra, Stability's best. OpenAI's edits (mask or transparent pixels = the area
to change) are an inpaint, so they go to Stable Image Inpaint; only dall-e-2 made variations
at OpenAI, served by SD3.5 Large image-to-image. dall-e-3 never edited, so it has no edit model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from service.errors import ApiError

ENDPOINTS = ("generations", "edits", "variations")
MAX_ALIAS_CHARS = 128

CORE = "stability.stable-image-core-v1:1"
ULTRA = "stability.stable-image-ultra-v1:1"
SD35 = "stability.sd3-5-large-v1:0"
INPAINT = "stability.stable-image-inpaint-v1:0"

DEFAULT_ALIASES: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "dall-e-2": {"generations": CORE, "edits": INPAINT, "variations": SD35},
    "dall-e-3": {"generations": CORE},
    "gpt-image-1-mini": {"generations": CORE, "edits": INPAINT},
    "gpt-image-1": {"generations": CORE, "edits": INPAINT},
    "gpt-image-1.5": {"generations": ULTRA, "edits": INPAINT},
    "gpt-image-2": {"generations": ULTRA, "edits": INPAINT},
})  # fmt: skip


@dataclass(frozen=True)
class Alias:
    name: str
    targets: Mapping[str, str]  # endpoint -> Bedrock model id

    def target(self, endpoint: str) -> str:
        """The model that serves `endpoint` under this alias (400 if there is none)."""
        model_id = self.targets.get(endpoint)
        if model_id is None:
            served = ", ".join(f"{e}: {m}" for e, m in self.targets.items())
            raise ApiError(
                400,
                f"The model '{self.name}' is an alias of Bedrock models for other endpoints "
                f"({served}); it has no model for /v1/images/{endpoint}. Name a Bedrock model, "
                "or ask the operator to map the alias in MODEL_ALIASES.",
                param="model",
                code="model_not_supported",
            )
        return model_id


def _served_endpoints() -> dict[str, set[str]]:
    """Every model id this service drives -> the endpoints it serves."""
    from service.models.registry import all_edit_models, all_models  # it imports this module

    served: dict[str, set[str]] = {}
    for _, spec in all_models():
        served.setdefault(spec.model_id, set()).add("generations")
    for _, edit in all_edit_models():
        served.setdefault(edit.model_id, set()).add("edits")
        if edit.variation:
            served[edit.model_id].add("variations")
    return served


def parse_aliases(table: Any) -> dict[str, Alias]:
    """A MODEL_ALIASES table, checked: raises ValueError naming the bad entry (its message
    follows the variable's name: `['gpt-image-1']: unknown model ...`).

    Each entry is `"alias": "<model id>"` (the model serves every endpoint it can) or
    `"alias": {"generations": "<id>", "edits": "<id>", "variations": "<id>"}` (any of them).
    """
    from service.models.registry import base_model_id

    if not isinstance(table, dict):
        raise ValueError(' must be a JSON object {"<alias>": "<Bedrock model id>", ...}')
    served = _served_endpoints()
    aliases: dict[str, Alias] = {}
    for name, value in table.items():
        entry = f"[{name!r}]"
        if not name.strip() or name != name.strip() or len(name) > MAX_ALIAS_CHARS:
            raise ValueError(f"{entry}: an alias is 1-{MAX_ALIAS_CHARS} characters, no spaces")
        if base_model_id(name) in served:
            raise ValueError(f"{entry}: {name!r} is a Bedrock model id, it cannot be an alias")
        if isinstance(value, str):
            if value not in served:
                raise ValueError(f"{entry}: unknown model {value!r}")
            targets = {endpoint: value for endpoint in ENDPOINTS if endpoint in served[value]}
        elif isinstance(value, dict) and value:
            targets = {}
            for endpoint, model_id in value.items():
                where = f"{entry}[{endpoint!r}]"
                if endpoint not in ENDPOINTS:
                    raise ValueError(f"{where}: the endpoints are {', '.join(ENDPOINTS)}")
                if not isinstance(model_id, str) or model_id not in served:
                    raise ValueError(f"{where}: unknown model {model_id!r}")
                if endpoint not in served[model_id]:
                    raise ValueError(f"{where}: {model_id} does not serve /v1/images/{endpoint}")
                targets[endpoint] = model_id
        else:
            raise ValueError(
                f"{entry}: expected a model id or an object of endpoint -> model id "
                f"({', '.join(ENDPOINTS)})"
            )
        aliases[name] = Alias(name, MappingProxyType(targets))
    return aliases


# The table the running service resolves with: installed at start-up (`use`), else the
# built-in one (tools, tests).
_active: dict[str, Mapping[str, Alias]] = {}


def use(aliases: Mapping[str, Alias]) -> None:
    _active["table"] = MappingProxyType(dict(aliases))


def active() -> Mapping[str, Alias]:
    if "table" not in _active:
        use(parse_aliases(dict(DEFAULT_ALIASES)))
    return _active["table"]


def lookup(name: str) -> Alias | None:
    return active().get(name)
