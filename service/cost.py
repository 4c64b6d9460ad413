"""What an image costs on Bedrock, in micro-USD (integers: sums stay exact).

Defaults are the on-demand prices per output image in us-east-1/us-west-2 as of 2025-2026
(shared/reference/bedrock-image-models.md §3.1 and §4.4; sources disagree for some models, so
every price can be overridden with IMAGE_PRICES). Nova Canvas and Titan price by quality
tier and size; Stability models per image. A model with no known price is charged
UNKNOWN_PRICE (the price of a large Stability image) rather than nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

MICRO = 1_000_000
UNKNOWN_PRICE = 80_000

# Quality values (OpenAI's and Bedrock's) that Nova Canvas and Titan bill as "premium".
PREMIUM = frozenset({"high", "hd", "xhigh", "max", "premium"})


def usd(micro: int) -> float:
    return micro / MICRO


def micro_usd(value: float) -> int:
    return round(value * MICRO)


@dataclass(frozen=True)
class Tiered:
    """Amazon's price grid: (standard, premium) for images up to `small_pixels`, then above."""

    small_pixels: int
    small: tuple[int, int]
    large: tuple[int, int]

    def price(self, quality: str | None, size: tuple[int, int]) -> int:
        premium = (quality or "").lower() in PREMIUM
        row = self.small if size[0] * size[1] <= self.small_pixels else self.large
        return row[1] if premium else row[0]


NOVA = Tiered(1024 * 1024, small=(40_000, 60_000), large=(60_000, 80_000))
TITAN = Tiered(512 * 512, small=(8_000, 10_000), large=(10_000, 12_000))

DEFAULT_PRICES: Mapping[str, int | Tiered] = MappingProxyType({
    "amazon.nova-canvas-v1:0": NOVA,
    "amazon.titan-image-generator-v1": TITAN,
    "amazon.titan-image-generator-v2:0": TITAN,
    "stability.stable-image-core-v1:0": 40_000,
    "stability.stable-image-core-v1:1": 40_000,
    "stability.sd3-5-large-v1:0": 80_000,
    "stability.stable-image-ultra-v1:0": 140_000,
    "stability.stable-image-ultra-v1:1": 140_000,
    "stability.stable-image-inpaint-v1:0": 70_000,
    "stability.stable-image-remove-background-v1:0": 70_000,
    "stability.stable-fast-upscale-v1:0": 30_000,
})  # fmt: skip


class PriceTable:
    def __init__(self, overrides: Mapping[str, int] | None = None) -> None:
        self._overrides = dict(overrides or {})

    def unit_price(self, model_id: str, quality: str | None, size: tuple[int, int]) -> int:
        """Micro-USD for one output image of `model_id` (a base model id)."""
        if model_id in self._overrides:
            return self._overrides[model_id]
        price = DEFAULT_PRICES.get(model_id, UNKNOWN_PRICE)
        return price.price(quality, size) if isinstance(price, Tiered) else price


def parse_prices(raw: str, known_model: Callable[[str], str]) -> dict[str, int]:
    """IMAGE_PRICES: {"<model id>": <USD per image>, ...}; raises ValueError.

    `known_model(name)` returns the base model id of a known model or raises ValueError.
    """
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object {"<model id>": <USD per image>}')
    prices = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise ValueError(f"the price of {name!r} must be a number of USD between 0 and 100")
        prices[known_model(name)] = micro_usd(value)
    return prices
