"""Stores: the interface, and the local-directory implementation."""

from playhead.store.base import Store, check_key
from playhead.store.local import LocalStore

__all__ = ["LocalStore", "Store", "check_key"]
