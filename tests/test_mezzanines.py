"""Workers far from the store decode local copies of mezzanines: downloaded once, whole or not
at all, the least recently used dropped past a budget; a local store's own files are never
copied."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from playhead.catalog import Catalog
from playhead.cluster.s3_server import S3Server, s3_server
from playhead.errors import NotFoundError
from playhead.media.ingest import IngestOptions
from playhead.media.testsrc import make_barcode_video
from playhead.mezzanines import MezzanineCache
from playhead.store import LocalStore
from playhead.store.s3 import S3Store


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        server.create_bucket("mezz")
        yield server


def _store(server: S3Server, prefix: str) -> S3Store:
    env = server.client_env()
    return S3Store.from_env("mezz", prefix, environ=env)


def _clips(directory: Path, n: int) -> list[Path]:
    return [
        make_barcode_video(directory / f"{i}.mp4", 30, Fraction(25), (64 + 16 * i, 48))
        for i in range(n)
    ]


def test_a_worker_downloads_each_mezzanine_once_and_keeps_a_budget(
    s3: S3Server, tmp_path: Path
) -> None:
    store = _store(s3, "budget")
    api = Catalog(store, MezzanineCache(store, tmp_path / "api"))
    assets = [api.ingest(path, IngestOptions()) for path in _clips(tmp_path, 3)]
    size = (tmp_path / "api" / "assets" / assets[0].id / "mezzanine.mp4").stat().st_size
    cache = MezzanineCache(store, tmp_path / "worker", budget_bytes=int(2.5 * size))
    copies: list[Path] = []
    threads = [
        threading.Thread(target=lambda: copies.append(cache.local(assets[0].id).mezzanine))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(copies)) == 1 and copies[0].is_relative_to(tmp_path / "worker")
    adir = cache.local(assets[0].id)
    assert adir.complete() and adir.load()[0] == assets[0]
    cache.local(assets[1].id)
    cache.local(assets[2].id)  # over budget: the least recently used copy goes
    assert not cache.dir(assets[0].id).root.exists()
    assert cache.dir(assets[2].id).complete()
    assert cache.local(assets[0].id).complete()  # needed again: downloaded again
    cache.forget(assets[2].id)
    assert not cache.dir(assets[2].id).root.exists()
    with pytest.raises(NotFoundError):
        cache.local("0123456789abcdef")
    assert not cache.dir("0123456789abcdef").root.exists()  # nothing half there


def test_a_local_store_is_decoded_in_place(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    catalog = Catalog(store, MezzanineCache(store, tmp_path / "store"))
    [asset] = [catalog.ingest(path, IngestOptions()) for path in _clips(tmp_path, 1)]
    elsewhere = MezzanineCache(store, tmp_path / "another-process")
    assert elsewhere.local(asset.id).root == tmp_path / "store" / "assets" / asset.id
    assert not (tmp_path / "another-process" / "assets" / asset.id).exists()
