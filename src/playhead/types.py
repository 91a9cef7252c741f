"""Small shared vocabulary imported by every module."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class FrameRange:
    """Half-open range ``[start, stop)`` of mezzanine frame indices."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.stop:
            raise ValueError(f"bad frame range [{self.start}, {self.stop})")

    @property
    def count(self) -> int:
        return self.stop - self.start
