"""Find effects by name: the built-ins plus every ``playhead.effects`` entry point."""

from __future__ import annotations

import json
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from playhead.effects.base import Effect, EffectParams, variants_of
from playhead.effects.basic import Cost, Passthrough
from playhead.effects.devices import effect_devices, preferred_batch
from playhead.effects.edges import Edges
from playhead.effects.faces import Faces
from playhead.effects.flow import Flow
from playhead.effects.onnx_model import Onnx
from playhead.effects.person import Person
from playhead.effects.roto import Roto
from playhead.errors import InvalidParamsError, UnknownEffectError

BUILTINS: tuple[Effect, ...] = (
    Person(),
    Roto(),
    Faces(),
    Edges(),
    Flow(),
    Onnx(),
    Passthrough(),
    Cost(),
)


@cache
def effects() -> dict[str, Effect]:
    found: dict[str, Effect] = {effect.name: effect for effect in BUILTINS}
    for ep in entry_points(group="playhead.effects"):
        effect = ep.load()()
        found.setdefault(effect.name, effect)  # a plug-in cannot shadow a built-in
    return found


def get(name: str) -> Effect:
    try:
        return effects()[name]
    except KeyError:
        known = ", ".join(sorted(effects()))
        raise UnknownEffectError(f"unknown effect {name!r}; known effects: {known}") from None


def parse_params(effect: Effect, raw: dict[str, Any]) -> EffectParams:
    """Validate strictly; the error names every offending parameter."""
    try:
        return effect.Params.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"]) or "params"
            problems.append(f"parameter {where!r}: {err['msg']}")
        raise InvalidParamsError(f"{effect.name}: " + "; ".join(problems)) from None


def parse_cli_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` strings to a dict; values are JSON where they parse, else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidParamsError(f"expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def canonical_params(params: EffectParams) -> dict[str, Any]:
    """The params with defaults filled in, as JSON: what a render's identity is made of."""
    return params.model_dump(mode="json")


def describe(effect: Effect) -> dict[str, Any]:
    devices = effect_devices(effect)
    return {
        "name": effect.name,
        "version": effect.version,
        "description": (type(effect).__doc__ or "").strip().splitlines()[0],
        "bands": list(effect.bands),
        "variants": list(variants_of(effect)),
        "context_frames": effect.context_frames,
        "devices": list(devices),
        "batch_sizes": {klass: preferred_batch(effect, klass) for klass in devices},
        "params": effect.Params.model_json_schema(),
    }
