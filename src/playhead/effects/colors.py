"""Colour parameters: ``#rrggbb`` strings validated once, used as RGB tuples."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def _check_hex(value: str) -> str:
    if not _HEX.match(value):
        raise ValueError(f"expected a colour like '#00ff00', got {value!r}")
    return value.lower()


HexColor = Annotated[str, AfterValidator(_check_hex)]


def rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)
