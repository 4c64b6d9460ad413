"""Where each Bedrock call goes: the region a model is called in.

Bedrock is regional, and its image models do not live everywhere: Stability's text-to-image
models answer only in us-west-2 (by their bare ids), its image services only through `us.`
cross-region inference profiles called from a US region. So each call goes to its model's
region, whatever AWS_REGION is. The rule, first match wins:

1. an ARN names its region: the call goes there;
2. a profile id of another geography than `us.` (`eu.`, `apac.`, ...): AWS_REGION, the
   caller chose where the service runs;
3. BEDROCK_MODEL_REGIONS, the operator's override for a model;
4. the model's row (`regions` in service/models/*): AWS_REGION when it is one of them, else
   the row's first region;
5. a model row without regions: AWS_REGION.

(A bare id of an image service is sent as its `us.` profile id: the registry does that.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from service.models.registry import all_edit_models, all_models, base_model_id

_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:bedrock:(?P<region>[a-z0-9-]+):")
_OTHER_GEOGRAPHY = re.compile(r"^(?:eu|apac|us-gov|ca|jp|au|global)\.")


def _table() -> dict[str, tuple[str, ...]]:
    """Model id -> the regions of its rows (a model that generates and edits has both rows)."""
    table: dict[str, tuple[str, ...]] = {}
    for _, spec in all_models():
        table[spec.model_id] = spec.regions
    for _, edit in all_edit_models():
        table.setdefault(edit.model_id, edit.regions)
    return table


class RegionRouter:
    def __init__(self, configured: str, overrides: Mapping[str, str]) -> None:
        self.configured = configured
        self._overrides = dict(overrides)
        self._table = _table()

    def region_for(self, invoke_id: str) -> str:
        """The region to call for what is sent to Bedrock as `modelId`."""
        if match := _ARN_REGION.match(invoke_id):
            return match.group("region")
        if _OTHER_GEOGRAPHY.match(invoke_id):
            return self.configured
        return self.model_region(base_model_id(invoke_id))

    def model_region(self, model_id: str) -> str:
        """The region a model (base id) is called in when named by its id."""
        if model_id in self._overrides:
            return self._overrides[model_id]
        regions = self._table.get(model_id, ())
        if not regions or self.configured in regions:
            return self.configured
        return regions[0]

    def regions_in_use(self) -> list[str]:
        """Every region some model is called in, the configured one first."""
        regions = {self.model_region(model_id) for model_id in self._table}
        return sorted(regions, key=lambda region: (region != self.configured, region))

    def describe(self) -> str:
        """The routes, for the start-up log: region: models."""
        by_region: dict[str, list[str]] = {}
        for model_id in self._table:
            by_region.setdefault(self.model_region(model_id), []).append(model_id)
        return "; ".join(
            f"{region}: {', '.join(by_region[region])}" for region in self.regions_in_use()
        )
