"""A store in a local directory (or a directory shared by several processes).

Writes go to a ``.part`` file first and are then linked (write-once) or renamed (overwrite)
into place, so readers never see half a value. Segment units are the cache: their bytes are
counted against a budget and evicted least recently used first, a whole unit at a time and its
ready marker first (`layout.py`). Accounting lives in memory and is rebuilt by scanning the
directory (`sweep`), so writes by other processes sharing the directory are counted too; a unit
younger than ``min_age_s`` is never evicted, so a unit another process is still writing stays.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from playhead.store.base import check_key
from playhead.store.layout import READY_FILE, unit_of


class LocalStore:
    def __init__(
        self, root: Path, budget_bytes: int | None = None, min_age_s: float = 60.0
    ) -> None:
        self.root = root
        self.budget = budget_bytes
        self.min_age_s = min_age_s
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # unit → [bytes, last used]; least recently used first
        self._units: OrderedDict[str, list[float]] = OrderedDict()
        self._bytes = 0
        self.sweep()

    # ---- accounting -------------------------------------------------------------------------

    def sweep(self) -> int:
        """Rescan the directory (other processes write here too), delete writes cut short by
        a crash, then evict down to the budget; how many units were evicted."""
        units: dict[str, list[float]] = {}
        stale = time.time() - 3600
        for path in self.root.rglob("*"):
            if not path.is_file():
                continue
            st = path.stat()
            if path.name.endswith(".part"):
                if st.st_mtime < stale:  # a write cut short long ago, not one in progress
                    path.unlink(missing_ok=True)
                continue
            unit = unit_of(path.relative_to(self.root).as_posix())
            if unit is not None:
                entry = units.setdefault(unit, [0.0, 0.0])
                entry[0] += st.st_size
                entry[1] = max(entry[1], st.st_mtime)
        with self._lock:
            for unit, (size, mtime) in units.items():
                # keep a recency this process saw, when it is newer than the files' age
                seen = self._units.get(unit)
                units[unit] = [size, max(mtime, seen[1] if seen else 0.0)]
            self._units = OrderedDict(sorted(units.items(), key=lambda kv: kv[1][1]))
            self._bytes = int(sum(size for size, _ in self._units.values()))
            return self._evict()

    def _file(self, key: str) -> Path:
        return self.root / check_key(key)

    def _used(self, key: str, grew: int = 0) -> None:
        unit = unit_of(key)
        if unit is None:
            return
        with self._lock:
            entry = self._units.setdefault(unit, [0.0, 0.0])
            entry[0] += grew
            entry[1] = time.time()
            self._units.move_to_end(unit)
            self._bytes += grew
            if grew:
                self._evict()

    def _evict(self) -> int:
        """Drop least recently used units old enough until under budget (lock held)."""
        if self.budget is None or self._bytes <= self.budget:
            return 0
        young = time.time() - self.min_age_s
        evicted = 0
        for unit, (size, used) in list(self._units.items()):
            if self._bytes <= self.budget:
                break
            if used > young:
                continue
            self._remove_unit(unit)
            self._bytes -= int(size)
            del self._units[unit]
            evicted += 1
        return evicted

    def _remove_unit(self, unit: str) -> None:
        directory = self.root / unit
        (directory / READY_FILE).unlink(missing_ok=True)  # not ready before anything else goes
        shutil.rmtree(directory, ignore_errors=True)

    # ---- the interface ----------------------------------------------------------------------

    def put(self, key: str, data: bytes, overwrite: bool = False) -> None:
        path = self._file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self._commit(key, Path(tmp), path, overwrite)

    def put_file(self, key: str, path: Path, overwrite: bool = False) -> None:
        target = self._file(key)
        if path.resolve() == target.resolve():  # written in place (ingest into the store)
            self._used(key, path.stat().st_size)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
        os.close(fd)
        os.unlink(tmp)
        try:
            os.link(path, tmp)  # same file system: no copy of a large file
        except OSError:
            shutil.copyfile(path, tmp)
        self._commit(key, Path(tmp), target, overwrite)

    def _commit(self, key: str, tmp: Path, path: Path, overwrite: bool) -> None:
        try:
            size = tmp.stat().st_size
            if overwrite:
                old = path.stat().st_size if path.exists() else 0
                os.replace(tmp, path)
                self._used(key, size - old)
                return
            try:
                os.link(tmp, path)  # atomic create-once: fails if the key exists
            except FileExistsError:
                return
            self._used(key, size)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes | None:
        try:
            data = self._file(key).read_bytes()
        except FileNotFoundError:
            return None
        self._used(key)
        return data

    def get_file(self, key: str, dest: Path) -> bool:
        source = self.local_path(key)
        if source is None:
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            shutil.copyfile(source, tmp)
        except FileNotFoundError:  # deleted since
            return False
        tmp.replace(dest)
        return True

    def stream(self, key: str, chunk: int = 1 << 20) -> Iterator[bytes] | None:
        try:
            f = self._file(key).open("rb")
        except FileNotFoundError:
            return None
        self._used(key)

        def chunks() -> Iterator[bytes]:
            with f:
                while block := f.read(chunk):
                    yield block

        return chunks()

    def local_path(self, key: str) -> Path | None:
        path = self._file(key)
        if not path.is_file():
            return None
        self._used(key)
        return path

    def exists(self, key: str) -> bool:
        return self._file(key).is_file()

    def delete(self, key: str) -> None:
        path = self._file(key)
        with contextlib.suppress(FileNotFoundError):
            size = path.stat().st_size
            path.unlink()
            self._used(key, -size)

    def delete_prefix(self, prefix: str) -> int:
        doomed = list(self.keys(prefix))
        # ready markers first: a unit is never "ready" with its other files gone
        doomed.sort(key=lambda k: (not k.endswith("/" + READY_FILE), k))
        for key in doomed:
            (self.root / key).unlink(missing_ok=True)
        if prefix.endswith("/"):
            shutil.rmtree(self.root / prefix, ignore_errors=True)
        with self._lock:
            for unit in [u for u in self._units if u.startswith(prefix)]:
                self._bytes -= int(self._units.pop(unit)[0])
        return len(doomed)

    def keys(self, prefix: str = "") -> Iterator[str]:
        directory, _, _ = prefix.rpartition("/")
        base = self.root / directory if directory else self.root
        if directory:
            check_key(directory)
        if not base.is_dir():
            return iter(())
        found = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.endswith(".part"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return iter(sorted(found))

    def size(self) -> int | None:
        with self._lock:
            return self._bytes
