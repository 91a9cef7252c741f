"""The local store: atomic writes, accounting rebuilt on restart, LRU that respects pins."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from playhead.store import LocalStore


def test_put_get_exists_delete(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    s.put("renders/r1/composite/0.m4s", b"abc")
    assert s.get("renders/r1/composite/0.m4s") == b"abc"
    assert s.exists("renders/r1/composite/0.m4s") and s.size() == 3
    s.put("renders/r1/composite/0.m4s", b"abcdef")  # overwrite re-accounts
    assert s.size() == 6
    s.delete("renders/r1/composite/0.m4s")
    assert s.get("renders/r1/composite/0.m4s") is None and s.size() == 0


@pytest.mark.parametrize(
    "key", ["../x", "/abs", "a/../../b", "", "a b", "a//b", "./a", "a/", "seg.part"]
)
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="bad store key"):
        LocalStore(tmp_path).put(key, b"x")


def test_restart_rebuilds_accounting_and_cleans_partial_writes(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    s.put("a/1", b"x" * 10)
    s.put("b/2", b"y" * 5)
    (tmp_path / "a" / "crashed.part").write_bytes(b"half")
    again = LocalStore(tmp_path)
    assert again.size() == 15 and list(again.keys()) == ["a/1", "b/2"]
    assert again.get("a/1") == b"x" * 10
    assert not (tmp_path / "a" / "crashed.part").exists()


def test_lru_eviction_keeps_recent_and_pinned(tmp_path: Path) -> None:
    s = LocalStore(tmp_path, budget_bytes=30)
    for name in "abc":
        s.put(name, b"x" * 10)
    s.get("a")  # a is now the most recent
    with s.pinned("b"):
        s.put("d", b"x" * 10)  # over budget: c is the oldest unpinned
        assert not s.exists("c") and s.exists("a") and s.exists("b")
        s.put("e", b"x" * 10)  # b is older but pinned: a goes
        assert s.exists("b") and not s.exists("a")
    assert s.size() <= 30


def test_pinned_keys_may_exceed_budget_until_unpinned(tmp_path: Path) -> None:
    s = LocalStore(tmp_path, budget_bytes=10)
    s.put("a", b"x" * 10)
    with s.pinned("a"):
        s.put("b", b"x" * 10)  # b itself is being written, a is pinned
        assert s.size() == 20
    assert s.size() <= 10


def test_open_streams_and_pins(tmp_path: Path) -> None:
    s = LocalStore(tmp_path, budget_bytes=10)
    s.put("a", b"0123456789")
    with s.open("a") as f:
        assert f is not None
        s.put("b", b"x" * 10)  # would evict a, but a is open
        assert f.read() == b"0123456789"
    with s.open("missing") as f:
        assert f is None


def test_readers_never_see_a_partial_write(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    big = [bytes([i]) * 2_000_000 for i in range(2)]
    s.put("k", big[0])
    stop = threading.Event()
    seen: set[int] = set()

    def read() -> None:
        while not stop.is_set():
            data = s.get("k")
            assert data is not None and len(data) == 2_000_000
            seen.add(len(set(data[::100_000])))

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(20):
        s.put("k", big[i % 2])
    stop.set()
    reader.join()
    assert seen == {1}  # every read was one whole value
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_delete_prefix(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    for key in ("renders/a/1", "renders/a/2", "renders/b/1"):
        s.put(key, b"x")
    assert s.delete_prefix("renders/a/") == 2
    assert list(s.keys()) == ["renders/b/1"]


def test_restart_with_a_smaller_budget_evicts_the_oldest(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    for i in range(5):
        s.put(f"k{i}", b"x" * 10)
        os.utime(tmp_path / f"k{i}", (i, i))  # recency at start-up comes from mtimes
    again = LocalStore(tmp_path, budget_bytes=20)
    assert again.size() == 20 and list(again.keys()) == ["k3", "k4"]


def test_accounting_matches_the_disk_under_contention(tmp_path: Path) -> None:
    s = LocalStore(tmp_path, budget_bytes=3000)

    def churn(n: int) -> None:
        for i in range(100):
            key = f"r/{(i * 7 + n) % 30}"
            s.put(key, b"x" * ((i + n) % 200 + 1))
            s.get(f"r/{(i + n) % 30}")
            if i % 5 == 0:
                s.delete(key)
            with s.open(f"r/{i % 30}") as f:
                if f is not None:
                    f.read()

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    on_disk = {p.relative_to(tmp_path).as_posix(): p.stat().st_size for p in tmp_path.rglob("*")}
    files = {k: size for k, size in on_disk.items() if not (tmp_path / k).is_dir()}
    assert sorted(files) == list(s.keys())
    assert sum(files.values()) == s.size() <= 3000
