"""Shared fixtures: real media, generated or fetched once through a package registry."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from playhead import samples
from playhead.bench.browser import launch
from playhead.cluster.process import Service
from playhead.cluster.redis_server import redis_server
from playhead.cluster.s3_server import S3Server, s3_server
from playhead.effects import models
from playhead.media.asset import Asset, AssetDir
from playhead.media.ingest import ingest
from playhead.media.testsrc import make_barcode_video


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _weights() -> None:
    """Weights and samples are fetched by `make setup`; fetching here keeps bare pytest working."""
    models.fetch()


@pytest.fixture(scope="session")
def carphone_path() -> Path:
    return samples.fetch()["carphone.mp4"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def barcode_path(media_dir: Path) -> Path:
    """95 frames at 30 fps: three full segments and a short last one."""
    return make_barcode_video(media_dir / "barcode.mp4", 95, Fraction(30), (320, 240))


@pytest.fixture(scope="session")
def barcode_asset(barcode_path: Path, data_dir: Path) -> Iterator[tuple[Asset, AssetDir]]:
    asset = ingest(barcode_path, data_dir)
    yield asset, AssetDir(data_dir / "assets" / asset.id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (one per test module: pages are made per test or module)."""
    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, S3Server]]:
    """A real redis-server and S3 server (SeaweedFS) with a ``playhead`` bucket, per module."""
    root = tmp_path_factory.mktemp("services")
    with redis_server(root / "redis") as redis, s3_server(root / "s3") as s3:
        s3.create_bucket("playhead")
        yield redis, s3
