"""One string names a store: ``file:///abs/path`` (a local directory) or ``s3://BUCKET/PREFIX``
(an S3-compatible bucket, prefix optional). Where S3 is and who we are there come from the
standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), so the same URL
reaches AWS, MinIO, R2 or a local test server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from playhead.store.base import Store
from playhead.store.local import LocalStore
from playhead.store.s3 import S3Store

FORMS = "file:///absolute/path or s3://bucket[/prefix]"


def open_store(url: str, cache_bytes: int | None = None) -> Store:
    """The store ``url`` names. ``cache_bytes`` budgets a local store's segment cache; an S3
    store evicts by the bucket's lifecycle rules instead, so it ignores it."""
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(f"bad store URL {url!r}: no query or fragment; expected {FORMS}")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"bad store URL {url!r}: file URLs name a local path; {FORMS}")
        path = unquote(parts.path)
        if not path.startswith("/") or path == "/":
            raise ValueError(f"bad store URL {url!r}: expected {FORMS}")
        return LocalStore(Path(path), budget_bytes=cache_bytes)
    if parts.scheme == "s3":
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if not bucket:
            raise ValueError(f"bad store URL {url!r}: expected {FORMS}")
        try:
            return S3Store.from_env(bucket, prefix)
        except ValueError as e:
            raise ValueError(f"bad store URL {url!r}: {e}") from None
    raise ValueError(f"bad store URL {url!r}: expected {FORMS}")
