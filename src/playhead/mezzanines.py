"""Local copies of mezzanines: PyAV decodes files, and a worker may be far from the store.

A read-through cache: `local(asset)` returns a complete local asset directory. When the store
keeps its files on this machine (a local or shared directory) that is the store's own
directory; otherwise the frame index and the mezzanine are downloaded the first time (the
record last, so a directory with ``asset.json`` is complete) and the least recently used
copies are dropped past a budget.
"""

from __future__ import annotations

import shutil
import threading
from collections import OrderedDict
from pathlib import Path

from playhead.errors import NotFoundError
from playhead.media.asset import AssetDir
from playhead.store import Store
from playhead.store.layout import ASSET_FILES, asset_key


class MezzanineCache:
    def __init__(self, store: Store, root: Path, budget_bytes: int | None = 20 * 1024**3) -> None:
        self.store = store
        self.root = root  # ingest writes here too: <root>/assets/<id>/
        self.budget = budget_bytes
        (root / "assets").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._used: OrderedDict[str, int] = OrderedDict()  # asset → bytes, least recent first

    def dir(self, asset_id: str) -> AssetDir:
        """Where this cache keeps (or ingest writes) a copy of ``asset_id``."""
        return AssetDir(self.root / "assets" / asset_id)

    def local(self, asset_id: str) -> AssetDir:
        """A complete local directory for ``asset_id``; `NotFoundError` if the store has none."""
        record = self.store.local_path(asset_key(asset_id, "asset.json"))
        if record is not None and AssetDir(record.parent).complete():
            return AssetDir(record.parent)  # the store's own files: nothing to copy
        adir = self.dir(asset_id)
        if not adir.complete():
            with self._lock:
                fetching = self._fetching.setdefault(asset_id, threading.Lock())
            with fetching:  # one download per asset, however many threads want it
                if not adir.complete():
                    self._download(asset_id, adir)
        self._touch(asset_id, adir)
        return adir

    def _download(self, asset_id: str, adir: AssetDir) -> None:
        for name in ASSET_FILES:  # asset.json last: it marks the directory complete
            if not self.store.get_file(asset_key(asset_id, name), adir.root / name):
                shutil.rmtree(adir.root, ignore_errors=True)
                raise NotFoundError(f"no asset {asset_id!r}")

    def _touch(self, asset_id: str, adir: AssetDir) -> None:
        with self._lock:
            if asset_id not in self._used:
                self._used[asset_id] = sum((adir.root / n).stat().st_size for n in ASSET_FILES)
            self._used.move_to_end(asset_id)
            while (
                self.budget is not None
                and sum(self._used.values()) > self.budget
                and len(self._used) > 1
            ):
                oldest, _ = self._used.popitem(last=False)
                # an open decoder keeps reading a deleted file; the next use downloads again
                shutil.rmtree(self.dir(oldest).root, ignore_errors=True)

    def forget(self, asset_id: str) -> None:
        """Drop the local copy (the asset was deleted)."""
        with self._lock:
            self._used.pop(asset_id, None)
        shutil.rmtree(self.dir(asset_id).root, ignore_errors=True)
