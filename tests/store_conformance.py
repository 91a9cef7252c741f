"""The Store conformance suite, written against the interface only.

`LocalStore` and the S3 store (against a real S3 server) subclass `StoreConformance` and
provide a fresh, empty store; the same tests pass unchanged.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from pathlib import Path

import pytest

from playhead.store import Store
from playhead.store.layout import segment_key, unit_prefix


class StoreConformance(ABC):
    @abstractmethod
    def store(self) -> Store:
        """A fresh, empty store of the implementation under test."""

    def test_put_get_exists_delete(self) -> None:
        s = self.store()
        s.put("renders/r1.json", b"abc")
        assert s.get("renders/r1.json") == b"abc" and s.exists("renders/r1.json")
        s.delete("renders/r1.json")
        assert s.get("renders/r1.json") is None and not s.exists("renders/r1.json")
        s.delete("renders/r1.json")  # deleting what is gone is fine

    def test_write_once_keeps_the_first_value_unless_overwriting(self) -> None:
        s = self.store()
        s.put("cache/r/0/composite.m4s", b"first")
        s.put("cache/r/0/composite.m4s", b"second")
        assert s.get("cache/r/0/composite.m4s") == b"first"
        s.put("exports/e.json", b"rendering", overwrite=True)
        s.put("exports/e.json", b"done", overwrite=True)
        assert s.get("exports/e.json") == b"done"

    def test_large_values_through_files(self, tmp_path: Path) -> None:
        s = self.store()
        data = bytes(range(256)) * 40_000  # 10 MB
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        s.put_file("assets/a/mezzanine.mp4", src)
        dest = tmp_path / "copy" / "big.bin"
        assert s.get_file("assets/a/mezzanine.mp4", dest) and dest.read_bytes() == data
        assert not s.get_file("assets/a/missing.mp4", tmp_path / "nope")
        chunks = s.stream("assets/a/mezzanine.mp4", chunk=1 << 20)
        assert chunks is not None and b"".join(chunks) == data
        assert s.stream("assets/a/missing.mp4") is None

    def test_keys_are_listed_by_prefix_in_order(self) -> None:
        s = self.store()
        for key in ["cache/b/1/composite.m4s", "renders/a.json", "renders/a/init/composite.mp4"]:
            s.put(key, b"x")
        s.put("renders/ab.json", b"x")
        assert list(s.keys("renders/a/")) == ["renders/a/init/composite.mp4"]
        assert list(s.keys("renders/a")) == [
            "renders/a.json",
            "renders/a/init/composite.mp4",
            "renders/ab.json",
        ]
        assert list(s.keys("cache/")) == ["cache/b/1/composite.m4s"]
        assert len(list(s.keys())) == 4
        assert list(s.keys("nothing/here/")) == []

    def test_delete_prefix_removes_a_unit_together(self) -> None:
        s = self.store()
        for variant in ("composite", "stacked"):
            s.put(segment_key("r", 3, variant), b"x")
        s.put("cache/r/3/bands.npz", b"x")
        s.put(segment_key("r", 4, "composite"), b"x")
        assert s.delete_prefix(unit_prefix("r", 3)) == 3
        assert list(s.keys("cache/r/")) == ["cache/r/4/composite.m4s"]

    @pytest.mark.parametrize(
        "key", ["../x", "/abs", "a/../../b", "", "a b", "a//b", "./a", "a/", "seg.part"]
    )
    def test_bad_keys_are_refused(self, key: str) -> None:
        with pytest.raises(ValueError, match="bad store key"):
            self.store().put(key, b"x")

    def test_concurrent_writers_of_one_key_leave_one_whole_value(self) -> None:
        s = self.store()
        values = [bytes([i]) * 200_000 for i in range(6)]
        threads = [threading.Thread(target=s.put, args=("cache/r/0/bands.npz", v)) for v in values]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s.get("cache/r/0/bands.npz") in values
