"""The Store interface: bytes by content-addressed key (segments, bands, init segments).

Keys look like ``renders/<id>/composite/17.m4s``. A store may evict what nobody uses (it is a
cache: everything in it can be rendered again), but never a key that is pinned — by a running
job writing it or by a request streaming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


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
    def put(self, key: str, data: bytes) -> None:
        """Write atomically: readers see the old value or the new one, never a part."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def open(self, key: str) -> AbstractContextManager[BinaryIO | None]:
        """A readable file for streaming, pinned while open; None inside if absent."""
        ...

    def path(self, key: str) -> Path | None:
        """A local file path (local stores only; the key is touched as used)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def size(self) -> int:
        """Bytes held."""
        ...

    def pinned(self, *keys: str) -> AbstractContextManager[None]:
        """Keep ``keys`` from eviction inside the block."""
        ...
