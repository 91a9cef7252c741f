"""Stores: the interface, the key layout, a local directory and an S3-compatible object store."""

from playhead.store.base import Store, StoreUnavailable, check_key
from playhead.store.local import LocalStore

__all__ = ["LocalStore", "Store", "StoreUnavailable", "check_key"]
