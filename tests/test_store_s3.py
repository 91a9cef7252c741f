"""The S3 store against a real S3 server (SeaweedFS on loopback ports): the conformance suite,
plus URLs, prefixes sharing a bucket, large files, and the server down, restarted or refusing
us."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from store_conformance import StoreConformance
from waiting import eventually

import playhead.store.s3 as s3_module
from playhead.cluster.process import free_port
from playhead.cluster.s3_server import REGION, S3Server, s3_server
from playhead.store import LocalStore, Store, StoreUnavailable
from playhead.store.layout import UNIT_FILES
from playhead.store.s3 import S3Store
from playhead.store.url import open_store

BUCKET = "playhead-test"
BOUND_S = 15.0  # generous: a dead endpoint fails in about a second


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    srv = s3_server(tmp_path_factory.mktemp("s3"))
    srv.start()
    try:
        srv.create_bucket(BUCKET)
        yield srv
    finally:
        srv.kill()  # throwaway data: no need to wait for a clean stop


def connect(srv: S3Server, prefix: str = "", bucket: str = BUCKET, **kw: object) -> S3Store:
    """A store on ``srv`` configured explicitly (whatever AWS_* this process has)."""
    options: dict[str, object] = {
        "endpoint": srv.endpoint,
        "region": REGION,
        "access_key_id": srv.access_key_id,
        "secret_access_key": srv.secret_access_key,
        **kw,
    }
    return S3Store(bucket, prefix, **options)  # type: ignore[arg-type]


def fresh_prefix() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def timed(fn: Callable[[], object]) -> tuple[Exception | None, float]:
    start = time.monotonic()
    try:
        fn()
    except Exception as e:
        return e, time.monotonic() - start
    return None, time.monotonic() - start


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` (an unavailable store counts as not yet) until it holds."""

    def holds() -> bool:
        try:
            return condition()
        except StoreUnavailable:
            return False

    eventually(holds, "the store's condition", timeout)


class TestS3Store(StoreConformance):
    @pytest.fixture(autouse=True)
    def _server(self, server: S3Server) -> None:
        self.server = server
        self.prefix = fresh_prefix()  # every test starts from an empty store

    def store(self) -> Store:
        return connect(self.server, self.prefix)


# ---- URLs -------------------------------------------------------------------------------------


@pytest.fixture
def aws_env(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    env = server.client_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_open_store_names_a_local_directory_or_a_bucket(
    tmp_path: Path, aws_env: dict[str, str]
) -> None:
    local = open_store(f"file://{tmp_path}/store", cache_bytes=1000)
    assert isinstance(local, LocalStore) and local.budget == 1000
    assert local.root == tmp_path / "store"

    prefix = fresh_prefix()
    s3 = open_store(f"s3://{BUCKET}/{prefix}/sub")
    assert isinstance(s3, S3Store) and s3.local_path("renders/r.json") is None
    s3.put("renders/r.json", b"{}")
    whole = open_store(f"s3://{BUCKET}")  # no prefix: the whole bucket
    assert whole.get(f"{prefix}/sub/renders/r.json") == b"{}"
    assert s3.size() is None


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/abs/path",
        "relative/path",
        "http://example.com/store",
        "gs://bucket/x",
        "file://host/abs/path",
        "file:relative",
        "file:///",
        "s3://",
        "s3:///prefix",
        "s3://Bad_Bucket/x",
        "s3://ab/x",
        "s3://bucket/../x",
        "s3://bucket/a b",
        "s3://bucket/x?versionId=1",
    ],
)
def test_open_store_refuses_other_urls(url: str, aws_env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="bad store URL"):
        open_store(url)


def test_open_store_needs_credentials_for_a_custom_endpoint(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ValueError, match="AWS_SECRET_ACCESS_KEY"):
        open_store(f"s3://{BUCKET}/x")


def test_plain_http_only_to_loopback_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ALLOW_HTTP", raising=False)
    with pytest.raises(ValueError, match="plain http"):
        S3Store(BUCKET, endpoint="http://s3.example.com", access_key_id="k", secret_access_key="s")
    S3Store(  # constructed, never asked anything
        BUCKET,
        endpoint="http://s3.example.com",
        allow_http=True,
        access_key_id="k",
        secret_access_key="s",
    )


# ---- sharing a bucket -------------------------------------------------------------------------


def test_two_prefixes_on_one_bucket_never_see_each_other(server: S3Server) -> None:
    base = fresh_prefix()
    a, b, ab = (
        connect(server, f"{base}/a"),
        connect(server, f"{base}/b"),
        connect(server, base + "x"),
    )
    a.put("renders/r.json", b"a")
    b.put("renders/r.json", b"b")
    ab.put("renders/r.json", b"x")  # a sibling whose name merely starts the same
    assert a.get("renders/r.json") == b"a" and b.get("renders/r.json") == b"b"
    assert list(a.keys()) == ["renders/r.json"] == list(b.keys())
    assert a.delete_prefix("") == 1
    assert not a.exists("renders/r.json") and b.get("renders/r.json") == b"b"
    assert ab.get("renders/r.json") == b"x"
    assert list(connect(server, base).keys()) == ["b/renders/r.json"]


def test_delete_prefix_takes_ready_markers_first_in_batches(
    server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = connect(server, fresh_prefix())
    keys = [f"cache/r/{k}/{name}" for k in range(12) for name in UNIT_FILES]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s.put(key, b"x"), keys))
    s.put("renders/r.json", b"{}")
    batches: list[list[str]] = []
    delete = S3Store._delete

    def spy(self: S3Store, batch: list[str]) -> None:
        batches.append(batch)
        delete(self, batch)

    monkeypatch.setattr(S3Store, "_delete", spy)
    monkeypatch.setattr(s3_module, "_DELETE_BATCH", 5)
    assert list(s.keys("cache/r/")) == sorted(keys)
    assert s.delete_prefix("cache/r/") == len(keys)
    assert [len(b) for b in batches] == [5, 5, 2, 5, 5, 5, 5, 4]  # 12 markers, then 24 others
    assert all(k.endswith("/composite.m4s") for b in batches[:3] for k in b)
    assert list(s.keys()) == ["renders/r.json"]


def test_many_threads_share_one_store(server: S3Server) -> None:
    s = connect(server, fresh_prefix())
    errors: list[Exception] = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                key = f"renders/t{t}/{i}/bands.npz"
                s.put(key, bytes([t, i]) * 1000)
                assert s.get(key) == bytes([t, i]) * 1000 and s.exists(key)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(list(s.keys())) == 160


# ---- values -----------------------------------------------------------------------------------


def test_empty_values(server: S3Server, tmp_path: Path) -> None:
    s = connect(server, fresh_prefix())
    s.put("assets/a/renders/r", b"")  # the render markers are empty
    assert s.get("assets/a/renders/r") == b"" and s.exists("assets/a/renders/r")
    chunks = s.stream("assets/a/renders/r")
    assert chunks is not None and b"".join(chunks) == b""
    assert s.get_file("assets/a/renders/r", tmp_path / "m") and (tmp_path / "m").read_bytes() == b""


def test_a_large_file_goes_up_and_down_in_parts(server: S3Server, tmp_path: Path) -> None:
    s = connect(server, fresh_prefix())  # 8 MiB parts
    src = tmp_path / "mezzanine.mp4"
    with src.open("wb") as f:
        for i in range(5):
            f.write(os.urandom(7 << 20) + bytes([i]))  # ~35 MiB: five parts
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    start = time.monotonic()
    s.put_file("assets/a/mezzanine.mp4", src)
    up = time.monotonic() - start
    dest = tmp_path / "copy" / "mezzanine.mp4"
    start = time.monotonic()
    assert s.get_file("assets/a/mezzanine.mp4", dest)
    down = time.monotonic() - start
    print(f"35 MiB: put_file {up:.2f} s, get_file {down:.2f} s")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    assert [p.name for p in dest.parent.iterdir()] == ["mezzanine.mp4"]  # no .part left
    chunks = s.stream("assets/a/mezzanine.mp4", chunk=3 << 20)
    assert chunks is not None
    sizes, h = [], hashlib.sha256()
    for c in chunks:
        sizes.append(len(c))
        h.update(c)
    assert h.hexdigest() == digest and set(sizes[:-1]) == {3 << 20}

    other = tmp_path / "other.mp4"
    other.write_bytes(b"o" * (9 << 20))
    s.put_file("assets/a/mezzanine.mp4", other)  # write-once: the first stays
    assert s.get_file("assets/a/mezzanine.mp4", dest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    s.put_file("assets/a/mezzanine.mp4", other, overwrite=True)
    assert s.get("assets/a/mezzanine.mp4") == other.read_bytes()


def test_a_value_replaced_while_streaming_is_never_spliced(server: S3Server) -> None:
    s = connect(server, fresh_prefix(), part_size=5 << 20)
    s.put("exports/e.mp4", b"1" * (12 << 20), overwrite=True)
    chunks = s.stream("exports/e.mp4", chunk=1 << 20)
    assert chunks is not None and next(chunks) == b"1" * (1 << 20)
    s.put("exports/e.mp4", b"2" * (12 << 20), overwrite=True)
    with pytest.raises(StoreUnavailable, match="replaced while being read"):
        for c in chunks:
            assert set(c) == {ord("1")}


# ---- faults -----------------------------------------------------------------------------------


def test_a_dead_endpoint_is_unavailable_in_bounded_time() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    s = S3Store(BUCKET, endpoint=endpoint, access_key_id="k", secret_access_key="not-in-messages")
    for name, op in [
        ("get", lambda: s.get("renders/r.json")),
        ("put", lambda: s.put("renders/r.json", b"x")),
        ("keys", lambda: list(s.keys("renders/"))),
    ]:
        error, took = timed(op)
        print(f"dead endpoint: {name} failed in {took:.2f} s")
        assert isinstance(error, StoreUnavailable) and took < BOUND_S
        assert s.endpoint in str(error) and BUCKET in str(error)
        assert "not-in-messages" not in str(error)


def test_a_hung_endpoint_is_unavailable_after_the_request_timeout() -> None:
    with socket.socket() as hung:  # accepts connections (the kernel does), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        port = hung.getsockname()[1]
        s = S3Store(
            BUCKET,
            endpoint=f"http://127.0.0.1:{port}",
            access_key_id="k",
            secret_access_key="s",
            request_timeout_s=1.0,
            retry_timeout_s=0.5,
        )
        error, took = timed(lambda: s.exists("renders/r.json"))
        print(f"hung endpoint: exists failed in {took:.2f} s")
        assert isinstance(error, StoreUnavailable) and took < BOUND_S


def test_refused_credentials_and_a_missing_bucket_are_unavailable(server: S3Server) -> None:
    wrong = connect(server, fresh_prefix(), secret_access_key="wrong-secret")
    for op in (lambda: wrong.get("renders/r.json"), lambda: wrong.put("renders/r.json", b"x")):
        error, took = timed(op)
        assert isinstance(error, StoreUnavailable) and took < BOUND_S
        assert "credentials refused" in str(error) and "wrong-secret" not in str(error)
    with pytest.raises(StoreUnavailable, match="credentials refused"):
        wrong.check()

    missing = connect(server, bucket="no-such-bucket")
    with pytest.raises(StoreUnavailable, match="bucket does not exist"):
        missing.get("renders/r.json")
    with pytest.raises(StoreUnavailable, match="bucket does not exist"):
        missing.check()
    connect(server).check()


def test_a_restarted_server_fails_clearly_while_down_and_loses_nothing(tmp_path: Path) -> None:
    srv = s3_server(tmp_path / "s3")
    srv.start()
    try:
        srv.create_bucket(BUCKET)
        port = srv.port
        s = connect(srv, "fault")
        s.put("renders/r.json", b"record")
        s.put("cache/r/0/composite.m4s", b"segment" * 1000)
        big = os.urandom(10 << 20)
        s.put("exports/e.mp4", big)

        srv.kill()  # kill -9: no chance to flush anything
        ops: dict[str, Callable[[], object]] = {
            "get": lambda: s.get("renders/r.json"),
            "put": lambda: s.put("cache/r/1/composite.m4s", b"x"),
            "exists": lambda: s.exists("renders/r.json"),
            "keys": lambda: list(s.keys("renders/")),
            "get_file": lambda: s.get_file("exports/e.mp4", tmp_path / "e.mp4"),
            "stream": lambda: s.stream("exports/e.mp4"),
            "delete": lambda: s.delete("cache/r/0/composite.m4s"),
        }
        for name, op in ops.items():
            error, took = timed(op)
            print(f"server down: {name} raised {type(error).__name__} in {took:.2f} s")
            assert isinstance(error, StoreUnavailable), name
            assert took < BOUND_S and srv.endpoint in str(error)
        assert not (tmp_path / "e.mp4").exists()

        srv.start()  # the same port, the same data
        assert srv.port == port
        wait_for(lambda: s.exists("renders/r.json"))
        assert s.get("renders/r.json") == b"record"
        assert s.get("cache/r/0/composite.m4s") == b"segment" * 1000
        assert s.get_file("exports/e.mp4", tmp_path / "e.mp4")
        assert (tmp_path / "e.mp4").read_bytes() == big
        s.put("cache/r/1/composite.m4s", b"after")

        srv.restart()  # a clean stop this time
        assert s.get("cache/r/1/composite.m4s") == b"after"
        assert list(s.keys("cache/r/")) == [
            "cache/r/0/composite.m4s",
            "cache/r/1/composite.m4s",
        ]
    finally:
        srv.kill()
