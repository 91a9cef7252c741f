"""Assets and renders on disk: the records a restarted server (or a second replica) reads back.

Assets live in ``<data>/assets/<id>/`` (never evicted); render records in
``<data>/renders/<id>.json``. Both are immutable once written, so caching them in memory is
safe in every replica.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from playhead.errors import PlayheadError
from playhead.media.asset import Asset, AssetDir
from playhead.renders import Render


class NotFoundError(PlayheadError, LookupError):
    status = 404
    code = "not_found"


class Catalog:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        (data_dir / "assets").mkdir(parents=True, exist_ok=True)
        (data_dir / "renders").mkdir(parents=True, exist_ok=True)
        self._assets: dict[str, Asset] = {}
        self._renders: dict[str, Render] = {}
        self._lock = threading.Lock()

    def asset_dir(self, asset_id: str) -> AssetDir:
        if not asset_id.isalnum():
            raise NotFoundError(f"no asset {asset_id!r}")
        return AssetDir(self.data_dir / "assets" / asset_id)

    def asset(self, asset_id: str) -> Asset:
        with self._lock:
            if asset_id in self._assets:
                return self._assets[asset_id]
        adir = self.asset_dir(asset_id)
        if not adir.complete():
            raise NotFoundError(f"no asset {asset_id!r}")
        asset = adir.load()[0]
        with self._lock:
            self._assets[asset_id] = asset
        return asset

    def assets(self) -> list[Asset]:
        root = self.data_dir / "assets"
        ids = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.endswith(".part"))
        out = []
        for asset_id in ids:
            try:
                out.append(self.asset(asset_id))
            except NotFoundError:
                continue
        return out

    def delete_asset(self, asset_id: str) -> None:
        self.asset(asset_id)
        with self._lock:
            self._assets.pop(asset_id, None)
            for rid in [r.id for r in self._renders.values() if r.asset == asset_id]:
                del self._renders[rid]
        for path in (self.data_dir / "renders").glob("*.json"):
            if Render.model_validate_json(path.read_text()).asset == asset_id:
                path.unlink(missing_ok=True)
        shutil.rmtree(self.asset_dir(asset_id).root, ignore_errors=True)

    def add_render(self, render: Render) -> None:
        path = self.data_dir / "renders" / f"{render.id}.json"
        if not path.exists():
            # a temp file of its own: two identical requests at once both write, both succeed
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
            with os.fdopen(fd, "w") as f:
                f.write(render.model_dump_json())
            os.replace(tmp, path)
        with self._lock:
            self._renders[render.id] = render

    def render(self, render_id: str) -> Render:
        with self._lock:
            if render_id in self._renders:
                return self._renders[render_id]
        path = self.data_dir / "renders" / f"{render_id}.json"
        if not render_id.isalnum() or not path.is_file():
            raise NotFoundError(f"no render {render_id!r}")
        render = Render.model_validate_json(path.read_text())
        with self._lock:
            self._renders[render_id] = render
        return render
