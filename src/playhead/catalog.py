"""Assets and renders: immutable records in the store, cached in memory by every process.

Both are content-addressed and never change once written, so every replica and worker may
cache them; only deletion invalidates (`forget`, which the server calls on every replica when
an asset is deleted). Nothing here lives only in one process: a restarted or second replica
reads the same records back.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TypeVar

from playhead.digest import sha256_file
from playhead.errors import NotFoundError
from playhead.media.asset import Asset, AssetDir
from playhead.media.ingest import IngestOptions, asset_id, ingest
from playhead.mezzanines import MezzanineCache
from playhead.renders import Render
from playhead.store import Store
from playhead.store.layout import (
    ASSET_FILES,
    asset_key,
    asset_prefix,
    asset_render_marker,
    cache_prefix,
    render_prefix,
    render_record,
)

R = TypeVar("R", Asset, Render)


def _check_id(kind: str, value: str) -> str:
    if not (value.isascii() and value.isalnum() and len(value) <= 64):
        raise NotFoundError(f"no {kind} {value[:80]!r}")
    return value


class Catalog:
    def __init__(self, store: Store, mezzanines: MezzanineCache) -> None:
        self.store = store
        self.mezzanines = mezzanines
        self._assets: dict[str, Asset] = {}
        self._renders: dict[str, Render] = {}
        self._lock = threading.Lock()

    # ---- assets -------------------------------------------------------------------------------

    def ingest(self, path: Path, options: IngestOptions, name: str | None = None) -> Asset:
        """Make the mezzanine of an upload and put the asset in the store; instant when the
        same file was ingested before (by any replica)."""
        sha = sha256_file(path)
        aid = asset_id(sha, options)
        try:
            return self.asset(aid)
        except NotFoundError:
            pass
        asset = ingest(path, self.mezzanines.root, options, name, source_sha256=sha)
        self.add_asset(self.mezzanines.dir(asset.id))
        return asset

    def add_asset(self, adir: AssetDir) -> Asset:
        """Put a complete local asset directory in the store, its record last."""
        asset = adir.load()[0]
        for name in ASSET_FILES:
            self.store.put_file(asset_key(asset.id, name), adir.root / name)
        with self._lock:
            self._assets[asset.id] = asset
        return asset

    def asset(self, aid: str) -> Asset:
        return self._record("asset", aid, asset_key(aid, "asset.json"), Asset, self._assets)

    def assets(self) -> list[Asset]:
        out = []
        for key in self.store.keys("assets/"):
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == "asset.json":
                try:
                    out.append(self.asset(parts[1]))
                except NotFoundError:  # deleted meanwhile
                    continue
        return out

    def local(self, aid: str) -> AssetDir:
        """A local directory with the asset's mezzanine and frame index, for decoding."""
        self.asset(aid)
        return self.mezzanines.local(aid)

    def delete_asset(self, aid: str) -> list[str]:
        """Delete an asset, its renders and everything cached for them; the render ids."""
        self.asset(aid)
        renders = self.renders_of(aid)
        # the asset record first: from then on the asset is gone for every reader
        self.store.delete(asset_key(aid, "asset.json"))
        for rid in renders:
            for unit in self._units(rid):  # shared cache units of the asset's renders
                self.store.delete_prefix(cache_prefix(unit))
            self.store.delete(render_record(rid))
            self.store.delete_prefix(cache_prefix(rid))
            self.store.delete_prefix(render_prefix(rid))
        self.store.delete_prefix(asset_prefix(aid))
        self.forget(aid, renders)
        self.mezzanines.forget(aid)
        return renders

    def forget(self, aid: str, renders: list[str]) -> None:
        """Drop cached records of a deleted asset (this process, or told by another)."""
        with self._lock:
            self._assets.pop(aid, None)
            for rid in renders:
                self._renders.pop(rid, None)

    # ---- renders ------------------------------------------------------------------------------

    def add_render(self, render: Render) -> None:
        with self._lock:
            if render.id in self._renders:
                return
        self.store.put(render_record(render.id), render.model_dump_json().encode())
        self.store.put(asset_render_marker(render.asset, render.id), b"")
        with self._lock:
            self._renders[render.id] = render

    def render(self, rid: str) -> Render:
        return self._record("render", rid, render_record(rid), Render, self._renders)

    def _record(self, kind: str, rid: str, key: str, model: type[R], cache: dict[str, R]) -> R:
        """An immutable record: from this process's cache, else from the store (then cached)."""
        _check_id(kind, rid)
        with self._lock:
            if rid in cache:
                return cache[rid]
        data = self.store.get(key)
        if data is None:
            raise NotFoundError(f"no {kind} {rid!r}")
        record = model.model_validate_json(data)
        with self._lock:
            cache[rid] = record
        return record

    def _units(self, rid: str) -> set[str]:
        try:
            return set(self.render(rid).units)
        except NotFoundError:  # a marker without a record: nothing shared to delete
            return set()

    def renders_of(self, aid: str) -> list[str]:
        prefix = asset_render_marker(aid, "")
        return [key[len(prefix) :] for key in self.store.keys(prefix)]
