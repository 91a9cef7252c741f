"""Where everything lives in the store: the one place that knows the key layout.

assets/<asset>/asset.json                 the asset record (written last: it marks the
assets/<asset>/index.json                 asset complete), the frame index and the
assets/<asset>/mezzanine.mp4              mezzanine — never evicted
assets/<asset>/renders/<render>           an empty marker per render of the asset
renders/<render>.json                     the render record
renders/<render>/init/<variant>.mp4       init segments
cache/<unit>/<k>/{composite.m4s, stacked.m4s, bands.npz}
                                          segment k: one unit, cached and evicted together;
                                          composite.m4s is written last and deleted first,
                                          so its presence means the whole unit is there.
                                          <unit> is the render's id, or for an effect whose
                                          segments read part of the params (roto) a hash of
                                          that part, shared by renders (`Render.unit`)
cache/<render>/<k>/failed.json            why segment k failed for good, and when
exports/<export>.json, exports/<export>.<ext>
                                          export records and files
"""

from __future__ import annotations

import re

ASSET_FILES = ("index.json", "mezzanine.mp4", "asset.json")  # in write order: record last
UNIT_FILES = ("bands.npz", "stacked.m4s", "composite.m4s")  # in write order: composite last
READY_FILE = "composite.m4s"

CACHE = "cache/"
_UNIT = re.compile(r"^(cache/[A-Za-z0-9]+/\d+/)[^/]+$")


def asset_key(asset_id: str, name: str) -> str:
    return f"assets/{asset_id}/{name}"


def asset_prefix(asset_id: str) -> str:
    return f"assets/{asset_id}/"


def asset_render_marker(asset_id: str, render_id: str) -> str:
    return f"assets/{asset_id}/renders/{render_id}"


def render_record(render_id: str) -> str:
    return f"renders/{render_id}.json"


def render_prefix(render_id: str) -> str:
    """The render's own files (init segments), kept as long as the render."""
    return f"renders/{render_id}/"


def cache_prefix(render_id: str) -> str:
    """Every cached segment unit of the render."""
    return f"{CACHE}{render_id}/"


def init_key(render_id: str, variant: str) -> str:
    return f"renders/{render_id}/init/{variant}.mp4"


def unit_prefix(render_id: str, k: int) -> str:
    return f"{CACHE}{render_id}/{k}/"


def segment_key(render_id: str, k: int, variant: str) -> str:
    return f"{CACHE}{render_id}/{k}/{variant}.m4s"


def bands_key(render_id: str, k: int) -> str:
    return f"{CACHE}{render_id}/{k}/bands.npz"


def failure_key(render_id: str, k: int) -> str:
    """Why segment k failed for good, and when: written by the planner, read by any replica."""
    return f"{CACHE}{render_id}/{k}/failed.json"


def export_record(export_id: str) -> str:
    return f"exports/{export_id}.json"


def export_file(export_id: str, extension: str) -> str:
    return f"exports/{export_id}{extension}"


def unit_of(key: str) -> str | None:
    """The segment unit a key belongs to (its prefix), or None for everything never evicted."""
    m = _UNIT.match(key)
    return m.group(1) if m else None


def ready_segment(key: str) -> tuple[str, int] | None:
    """(render, k) when ``key`` is the file whose presence marks segment k ready."""
    if unit_of(key) is None or not key.endswith("/" + READY_FILE):
        return None
    _, render_id, k, _ = key.split("/")
    return render_id, int(k)
