"""A store in a local directory (or a shared volume): atomic writes, byte accounting, LRU.

Accounting and recency live in memory and are rebuilt by scanning at start-up (file sizes and
modification times), so a restarted process needs nothing but the directory. Eviction runs
after each write, oldest access first, down to the budget, and skips pinned keys.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from playhead.store.base import check_key


class LocalStore:
    def __init__(self, root: Path, budget_bytes: int | None = None) -> None:
        self.root = root
        self.budget = budget_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self._pins: Counter[str] = Counter()
        self._bytes = 0
        self._scan()
        with self._lock:
            self._evict()  # the budget may have shrunk since the last run

    def _scan(self) -> None:
        found: list[tuple[float, str, int]] = []
        for path in self.root.rglob("*"):
            if not path.is_file():
                continue
            if path.name.endswith(".part"):  # a write cut short by a crash
                path.unlink(missing_ok=True)
                continue
            st = path.stat()
            found.append((st.st_mtime, path.relative_to(self.root).as_posix(), st.st_size))
        for _, key, size in sorted(found):
            self._sizes[key] = size
            self._bytes += size

    def _file(self, key: str) -> Path:
        return self.root / check_key(key)

    def _touch(self, key: str) -> None:
        if key in self._sizes:
            self._sizes.move_to_end(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            # rename and accounting change together, so a concurrent delete or eviction of
            # the same key cannot leave bytes accounted for a file that is gone
            with self._lock:
                os.replace(tmp, path)
                self._account(key, len(data))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)  # gone already if the rename happened
            raise

    def _account(self, key: str, size: int) -> None:
        """Count a freshly written key as the most recent, then evict others (lock held)."""
        self._bytes += size - self._sizes.pop(key, 0)
        self._sizes[key] = size
        self._pins[key] += 1  # not evicted by its own write
        try:
            self._evict()
        finally:
            self._unpin(key)

    def get(self, key: str) -> bytes | None:
        path = self._file(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        with self._lock:
            self._touch(key)
        return data

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO | None]:
        with self.pinned(key):
            try:
                f = self._file(key).open("rb")
            except FileNotFoundError:
                yield None
                return
            with f:
                yield f

    def path(self, key: str) -> Path | None:
        path = self._file(key)
        with self._lock:
            if key not in self._sizes or not path.is_file():
                return None
            self._touch(key)
        return path

    def exists(self, key: str) -> bool:
        return self._file(key).is_file()

    def delete(self, key: str) -> None:
        path = self._file(key)
        with self._lock:
            path.unlink(missing_ok=True)
            self._bytes -= self._sizes.pop(key, 0)

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            doomed = [k for k in self._sizes if k.startswith(prefix)]
        for key in doomed:
            self.delete(key)
        return len(doomed)

    def keys(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            found = [k for k in self._sizes if k.startswith(prefix)]
        return iter(sorted(found))

    def size(self) -> int:
        with self._lock:
            return self._bytes

    @contextlib.contextmanager
    def pinned(self, *keys: str) -> Iterator[None]:
        with self._lock:
            for key in keys:
                self._pins[check_key(key)] += 1
        try:
            yield
        finally:
            with self._lock:
                for key in keys:
                    self._unpin(key)
                self._evict()

    def _unpin(self, key: str) -> None:
        self._pins[key] -= 1
        if self._pins[key] <= 0:
            del self._pins[key]

    def _evict(self) -> None:
        """Drop least recently used, unpinned keys until under budget (lock held)."""
        if self.budget is None or self._bytes <= self.budget:
            return
        for key in list(self._sizes):
            if self._bytes <= self.budget:
                break
            if self._pins.get(key):
                continue
            (self.root / key).unlink(missing_ok=True)
            self._bytes -= self._sizes.pop(key)
