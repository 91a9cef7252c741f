"""A render: (asset, effect, version, canonical params). Immutable, content-addressed.

New params make a new render. Segment ``k`` of render ``R`` is determined by ``(R, k)`` alone
(segment boundaries are fixed by the asset), so ``R`` plus ``k`` is the segment's cache key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from playhead.effects import registry
from playhead.effects.base import EffectParams, variants_of
from playhead.errors import UnsupportedError
from playhead.media.asset import Asset
from playhead.media.export import NEEDS_MATTE, ExportFormat
from playhead.store import layout


def check_export(effect_name: str, fmt: ExportFormat) -> None:
    """Refuse a format the effect cannot fill (a matte sequence of an effect without a matte)."""
    if fmt in NEEDS_MATTE and "matte" not in registry.get(effect_name).bands:
        with_matte = sorted(n for n, e in registry.effects().items() if "matte" in e.bands)
        raise UnsupportedError(
            f"effect {effect_name!r} makes no matte, so there is nothing for {fmt}; "
            f"effects with a matte: {', '.join(with_matte)}"
        )


class Render(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    asset: str
    effect: str
    version: str
    params: dict[str, Any]
    variants: tuple[str, ...]

    @classmethod
    def create(cls, asset: Asset, effect_name: str, raw_params: dict[str, Any]) -> Render:
        """Validate the params (raising InvalidParamsError) and derive the render's id."""
        effect = registry.get(effect_name)
        params = registry.parse_params(effect, raw_params)
        canonical = registry.canonical_params(params)
        key = json.dumps(
            [asset.id, effect.name, effect.version, canonical],
            sort_keys=True,
            separators=(",", ":"),
        )
        return cls(
            id=hashlib.sha256(key.encode()).hexdigest()[:20],
            asset=asset.id,
            effect=effect.name,
            version=effect.version,
            params=canonical,
            variants=variants_of(effect),
        )

    def effect_params(self) -> EffectParams:
        return registry.parse_params(registry.get(self.effect), self.params)

    def segment_key(self, variant: str, k: int) -> str:
        return layout.segment_key(self.id, k, variant)

    def init_key(self, variant: str) -> str:
        return layout.init_key(self.id, variant)

    def bands_key(self, k: int) -> str:
        return layout.bands_key(self.id, k)
