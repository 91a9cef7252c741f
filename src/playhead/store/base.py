"""The Store interface: bytes by key — assets, render records, segments, bands, exports.

Keys are relative paths (see `layout.py` for what lives where). Content-addressed keys are
written once (``overwrite=False``, the default): a second writer of the same key — a duplicate
job after a lease was lost, a retried write after a Redis restart — leaves the first copy in
place, so bytes a reader already has never change. Records that change (export progress) are
written with ``overwrite=True``. A store may evict cached segments (everything under a segment
unit, together), never assets or records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from playhead.errors import PlayheadError

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class StoreUnavailable(PlayheadError, ConnectionError):
    """The object store cannot be reached (down, restarting, or refusing our credentials)."""

    status = 503
    code = "store_unavailable"


def check_key(key: str) -> str:
    """Keys are relative paths of safe characters, with no ``..``: they become file names.
    ``.part`` is reserved for writes in progress, which a restart deletes."""
    if (
        not _KEY.match(key)
        or any(part in (".", "..") for part in key.split("/"))
        or key.endswith(".part")
    ):
        raise ValueError(f"bad store key {key!r}")
    return key


class Store(Protocol):
    def put(self, key: str, data: bytes, overwrite: bool = False) -> None:
        """Write atomically: readers see the whole value or none. Without ``overwrite`` an
        existing value is kept (content-addressed keys: the same key, the same content)."""
        ...

    def put_file(self, key: str, path: Path, overwrite: bool = False) -> None:
        """`put` from a local file, streamed (mezzanines and exports are large)."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def get_file(self, key: str, dest: Path) -> bool:
        """Copy the value to the local file ``dest`` (atomically); False if absent."""
        ...

    def stream(self, key: str, chunk: int = 1 << 20) -> Iterator[bytes] | None:
        """The value in chunks, for large downloads; None if absent."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The value's own local file, when the store is a directory; else None."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; how many were deleted."""
        ...

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under ``prefix``, sorted."""
        ...

    def size(self) -> int | None:
        """Bytes held in evictable segment units; None when the store cannot tell cheaply."""
        ...
