"""An ingested asset: the mezzanine and its frame index, persisted as JSON beside it."""

from __future__ import annotations

import json
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from playhead.types import FrameRange


class Asset(BaseModel):
    """A source video made ready for frame-exact work.

    All frame maths uses integer indices on the mezzanine: frame ``i`` is presented at
    ``i / fps`` and segment ``k`` is frames ``[k*S, (k+1)*S)`` (the last one may be shorter).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    source_sha256: str
    frames: int
    fps_num: int
    fps_den: int
    width: int
    height: int
    segment_frames: int
    source: dict[str, Any]  # what probe() said about the upload

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    @property
    def duration_s(self) -> float:
        return float(self.frames / self.fps)

    @property
    def segments(self) -> int:
        return -(-self.frames // self.segment_frames)

    def segment_range(self, k: int) -> FrameRange:
        if not 0 <= k < self.segments:
            raise IndexError(f"segment {k} is out of range 0..{self.segments - 1}")
        start = k * self.segment_frames
        return FrameRange(start, min(start + self.segment_frames, self.frames))

    def segment_counts(self) -> list[int]:
        """Frames in each segment (all ``segment_frames`` but perhaps the last): for playlists."""
        return [self.segment_range(k).count for k in range(self.segments)]

    def public(self) -> dict[str, Any]:
        """The asset as the API and ``playhead ingest --json`` show it."""
        return {
            "id": self.id,
            "name": self.name,
            "frames": self.frames,
            "fps": float(self.fps),
            "fps_rational": f"{self.fps_num}/{self.fps_den}",
            "width": self.width,
            "height": self.height,
            "duration": round(self.duration_s, 6),
            "segment_frames": self.segment_frames,
            "segments": self.segments,
        }


class FrameIndex(BaseModel):
    """Presentation timestamp of every mezzanine frame, and which frames are keyframes.

    Read back from the written file rather than assumed, so decode can check every frame.
    """

    model_config = ConfigDict(frozen=True)

    time_base_num: int
    time_base_den: int
    pts: list[int]
    keyframes: list[int]

    @cached_property
    def frame_of_pts(self) -> dict[int, int]:
        return {p: i for i, p in enumerate(self.pts)}

    def keyframe_before(self, frame: int) -> int:
        """The last keyframe at or before ``frame`` (binary search)."""
        lo, hi = 0, len(self.keyframes) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.keyframes[mid] <= frame:
                lo = mid
            else:
                hi = mid - 1
        return self.keyframes[lo]


class AssetDir:
    """On-disk layout of an asset: ``<data>/assets/<id>/{asset,index}.json, mezzanine.mp4``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def mezzanine(self) -> Path:
        return self.root / "mezzanine.mp4"

    @property
    def asset_json(self) -> Path:
        return self.root / "asset.json"

    @property
    def index_json(self) -> Path:
        return self.root / "index.json"

    def complete(self) -> bool:
        return self.asset_json.is_file() and self.index_json.is_file() and self.mezzanine.is_file()

    def load(self) -> tuple[Asset, FrameIndex]:
        asset = Asset.model_validate_json(self.asset_json.read_text())
        index = FrameIndex.model_validate_json(self.index_json.read_text())
        return asset, index

    def save(self, asset: Asset, index: FrameIndex) -> None:
        # index first and asset.json last: asset.json is what marks the directory complete
        _atomic_write(self.index_json, index.model_dump_json())
        _atomic_write(self.asset_json, json.dumps(asset.model_dump(), indent=1))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(text)
    tmp.replace(path)
