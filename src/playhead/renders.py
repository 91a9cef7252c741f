"""A render: (asset, effect, version, canonical params). Immutable, content-addressed.

New params make a new render. Segment ``k`` of render ``R`` is determined by ``(R, k)`` alone
(segment boundaries are fixed by the asset), so ``R`` plus ``k`` is the segment's cache key.

An effect whose segments each depend on part of the params only (``roto``: segment k reads
the clicks on the annotated frames nearest to it) names that part (``segment_params``); the
segment's cache key is then ``(unit, k)``, where the *unit* hashes the asset, the effect and
that part. A new click on frame t makes a new render whose far-away segments have the units
of the old one, so they are already in the cache.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from playhead.effects import registry
from playhead.effects.base import EffectParams, check_params, segment_params, variants_of
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
    units: tuple[str, ...] = ()
    """Each segment's cache unit, for effects with ``segment_params``; empty: the render's id."""

    @classmethod
    def create(cls, asset: Asset, effect_name: str, raw_params: dict[str, Any]) -> Render:
        """Validate the params (raising InvalidParamsError) and derive the render's id."""
        effect = registry.get(effect_name)
        params = registry.parse_params(effect, raw_params)
        check_params(effect, params, asset.width, asset.height, asset.frames)
        canonical = registry.canonical_params(params)
        parts = [
            segment_params(effect, params, asset.segment_range(k)) for k in range(asset.segments)
        ]
        units = tuple(
            _digest([asset.id, effect.name, effect.version, part])
            for part in parts
            if part is not None
        )
        return cls(
            id=_digest([asset.id, effect.name, effect.version, canonical]),
            asset=asset.id,
            effect=effect.name,
            version=effect.version,
            params=canonical,
            variants=variants_of(effect),
            units=units,
        )

    def effect_params(self) -> EffectParams:
        return registry.parse_params(registry.get(self.effect), self.params)

    def unit(self, k: int) -> str:
        """Where segment k is cached: shared with every render whose segment k reads the same."""
        return self.units[k] if self.units else self.id

    def units_of_segments(self) -> dict[str, set[int]]:
        """Each distinct cache unit and the segments of this render in it (none: no units)."""
        out: dict[str, set[int]] = {}
        for k, unit in enumerate(self.units):
            out.setdefault(unit, set()).add(k)
        return out

    def segment_key(self, variant: str, k: int) -> str:
        return layout.segment_key(self.unit(k), k, variant)

    def init_key(self, variant: str) -> str:
        return layout.init_key(self.id, variant)

    def bands_key(self, k: int) -> str:
        return layout.bands_key(self.unit(k), k)


def _digest(identity: list[Any]) -> str:
    key = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:20]
