"""API keys: who may call, with which models, limits and budgets.

Keys are configured as SHA-256 hashes, never in clear: `API_KEYS` holds the minimal form
(`name=<sha256 hex>,...`), `API_KEYS_FILE` a JSON file with per-key options. A presented key
is hashed and compared with every configured hash in constant time (`hmac.compare_digest`,
no early exit), so neither the answer time nor the logs reveal anything about a key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import ApiError

KEY_PREFIX = "sk-img-"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
# Per-key options of API_KEYS_FILE entries and the JSON type each must have.
_OPTIONS: Mapping[str, type | tuple[type, ...]] = {
    "name": str,
    "sha256": str,
    "models": list,
    "requests_per_minute": int,
    "max_concurrent": int,
    "budget_usd_per_day": (int, float),
    "budget_usd_per_month": (int, float),
    "admin": bool,
}


@dataclass(frozen=True)
class ApiKey:
    """One configured key. Zero limits and None budgets mean "no limit"."""

    name: str
    digest: bytes  # SHA-256 of the key
    models: frozenset[str] = frozenset()  # base model ids; empty: every model
    requests_per_minute: int = 0
    max_concurrent: int = 0
    budget_usd_per_day: float | None = None
    budget_usd_per_month: float | None = None
    admin: bool = False  # may read the usage report of every key

    def __repr__(self) -> str:  # never print the hash, even in a traceback
        return f"ApiKey(name={self.name!r})"

    def allows_model(self, model_id: str) -> bool:
        return not self.models or model_id in self.models


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _check_name(name: str, seen: set[str]) -> None:
    if not _NAME.match(name):
        raise ValueError(
            f"key name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name in seen:
        raise ValueError(f"key name {name!r} is configured twice")
    seen.add(name)


def _digest(name: str, hex_hash: str) -> bytes:
    hex_hash = hex_hash.strip().lower()
    if not _HEX.match(hex_hash):
        raise ValueError(f"key {name!r}: the hash must be 64 hex digits (SHA-256 of the key)")
    return bytes.fromhex(hex_hash)


def parse_api_keys(raw: str, seen: set[str]) -> list[ApiKey]:
    """`name=<sha256 hex>,...` (the API_KEYS form)."""
    keys = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, sep, hex_hash = entry.partition("=")
        if not sep:
            raise ValueError("entries must look like name=<sha256 hex of the key>")
        _check_name(name.strip(), seen)
        keys.append(ApiKey(name=name.strip(), digest=_digest(name, hex_hash)))
    return keys


def _positive(name: str, option: str, value: Any) -> Any:
    if value < 0:
        raise ValueError(f"key {name!r}: {option} must not be negative")
    return value


def parse_key_file(text: str, seen: set[str], known_model: Any) -> list[ApiKey]:
    """The API_KEYS_FILE form: {"keys": [{"name": ..., "sha256": ..., options...}]}.

    `known_model(name)` returns the base model id of a model name, or raises ValueError.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError('expected a JSON object {"keys": [{"name": ..., "sha256": ...}, ...]}')
    keys = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("every entry of 'keys' must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not isinstance(entry.get("sha256"), str):
            raise ValueError("every key needs a 'name' and a 'sha256' (strings)")
        for option, value in entry.items():
            kind = _OPTIONS.get(option)
            if kind is None:
                raise ValueError(
                    f"key {name!r}: unknown option {option!r} (known: {', '.join(_OPTIONS)})"
                )
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"key {name!r}: {option} has the wrong type")
        _check_name(name, seen)
        models = entry.get("models", [])
        if not all(isinstance(model, str) for model in models):
            raise ValueError(f"key {name!r}: models must be a list of model ids")
        day, month = entry.get("budget_usd_per_day"), entry.get("budget_usd_per_month")
        keys.append(
            ApiKey(
                name=name,
                digest=_digest(name, entry["sha256"]),
                models=frozenset(known_model(model) for model in models),
                requests_per_minute=_positive(
                    name, "requests_per_minute", entry.get("requests_per_minute", 0)
                ),
                max_concurrent=_positive(name, "max_concurrent", entry.get("max_concurrent", 0)),
                budget_usd_per_day=None if day is None else _positive(name, "budget", float(day)),
                budget_usd_per_month=(
                    None if month is None else _positive(name, "budget", float(month))
                ),
                admin=entry.get("admin", False),
            )
        )
    return keys


def bearer_token(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header (the scheme is case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


INVALID_KEY = ApiError(
    401,
    "Incorrect API key provided. Send a valid key as 'Authorization: Bearer <key>'.",
    code="invalid_api_key",
    error_type="invalid_request_error",
)
MISSING_KEY = ApiError(
    401,
    "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
    code="invalid_api_key",
    error_type="invalid_request_error",
)


class KeyRing:
    """The configured keys; with none the service runs open (every caller is anonymous)."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = tuple(keys)

    @property
    def open(self) -> bool:
        return not self.keys

    def authenticate(self, authorization: str | None) -> ApiKey | None:
        """The key a request presents; None when running open. Raises the 401 ApiError."""
        if self.open:
            return None
        token = bearer_token(authorization)
        if token is None:
            raise MISSING_KEY
        digest = hashlib.sha256(token.encode()).digest()
        found: ApiKey | None = None
        for key in self.keys:  # every hash is compared: the time does not depend on the match
            if hmac.compare_digest(digest, key.digest):
                found = key
        if found is None:
            raise INVALID_KEY
        return found


def check_model(key: ApiKey | None, model_id: str) -> None:
    """403 naming the model when the key's allowlist does not include it."""
    if key is not None and not key.allows_model(model_id):
        allowed = ", ".join(sorted(key.models))
        raise ApiError(
            403,
            f"The API key '{key.name}' may not use the model '{model_id}' (allowed: {allowed}).",
            param="model",
            code="model_not_allowed",
        )
