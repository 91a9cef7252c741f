"""The local store: conformance, plus accounting, unit eviction and sweeping."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from store_conformance import StoreConformance

from playhead.store import LocalStore, Store
from playhead.store.layout import segment_key


class TestLocalStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _root(self, tmp_path: Path) -> None:
        self.root = tmp_path / "store"

    def store(self) -> Store:
        return LocalStore(self.root)


def _unit(s: LocalStore, render: str, k: int, size: int = 10) -> None:
    s.put(f"cache/{render}/{k}/bands.npz", b"b" * size)
    s.put(segment_key(render, k, "composite"), b"c" * size)


def test_only_segment_units_count_against_the_budget(tmp_path: Path) -> None:
    s = LocalStore(tmp_path, budget_bytes=100, min_age_s=0)
    s.put("assets/a/mezzanine.mp4", b"m" * 1000)  # never evicted, not counted
    _unit(s, "r", 0)
    assert s.size() == 20 and s.exists("assets/a/mezzanine.mp4")


def test_eviction_takes_whole_units_least_recently_used_first(tmp_path: Path) -> None:
    s = LocalStore(tmp_path, budget_bytes=60, min_age_s=0)
    for k in range(3):
        _unit(s, "r", k)
    s.get(segment_key("r", 0, "composite"))  # segment 0 is now the most recent
    _unit(s, "r", 3)  # over budget: segment 1 goes, all of it
    assert list(s.keys("cache/r/1/")) == []
    assert s.exists(segment_key("r", 0, "composite")) and s.exists("cache/r/0/bands.npz")
    assert s.size() == 60


def test_young_units_are_never_evicted(tmp_path: Path) -> None:
    s = LocalStore(tmp_path, budget_bytes=10, min_age_s=3600)
    _unit(s, "r", 0)
    _unit(s, "r", 1)
    assert s.exists(segment_key("r", 0, "composite")) and s.size() == 40


def test_sweep_counts_what_other_processes_wrote_and_evicts(tmp_path: Path) -> None:
    s = LocalStore(tmp_path, budget_bytes=25, min_age_s=0)
    other = LocalStore(tmp_path)  # another process sharing the directory
    _unit(other, "r", 0)
    old = time.time() - 100
    for path in (tmp_path / "cache/r/0").iterdir():
        os.utime(path, (old, old))
    _unit(other, "r", 1)
    assert s.size() == 0  # not seen yet
    assert s.sweep() == 1  # the older unit goes
    assert not s.exists(segment_key("r", 0, "composite"))
    assert s.exists(segment_key("r", 1, "composite")) and s.size() == 20


def test_restart_rebuilds_accounting_and_cleans_old_partial_writes(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    _unit(s, "r", 0)
    crashed = tmp_path / "cache/r/0/bands.npz.123.part"
    crashed.write_bytes(b"half")
    in_progress = tmp_path / "cache/r/0/stacked.m4s.456.part"
    in_progress.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(crashed, (old, old))
    again = LocalStore(tmp_path)
    assert again.size() == 20
    assert not crashed.exists() and in_progress.exists()


def test_a_file_already_in_place_is_only_counted(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    path = tmp_path / "cache/r/0/composite.m4s"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 7)
    s.put_file("cache/r/0/composite.m4s", path)
    assert s.size() == 7 and s.local_path("cache/r/0/composite.m4s") == path
