"""Where playhead keeps its files: one home directory, overridable by ``PLAYHEAD_HOME``."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root of playhead's caches (model weights, sample media, ingested assets)."""
    env = os.environ.get("PLAYHEAD_HOME")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "playhead"


def models_dir() -> Path:
    return home() / "models"


def samples_dir() -> Path:
    return home() / "samples"


def data_dir() -> Path:
    return home() / "data"
