"""Bytes as an HTTP response, honouring a single ``Range`` (players and FFmpeg use them)."""

from __future__ import annotations

import re

from fastapi.responses import Response

from playhead.errors import PlayheadError

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiableError(PlayheadError, ValueError):
    status = 416
    code = "range_not_satisfiable"


def ranged(
    data: bytes, range_header: str | None, media_type: str, headers: dict[str, str]
) -> Response:
    """The whole body (200), or the one range asked for (206); several ranges: the whole."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    m = _RANGE.match((range_header or "").strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return Response(data, media_type=media_type, headers=headers)
    size = len(data)
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:  # a suffix: the last N bytes
        start, end = max(0, size - int(m.group(2))), size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiableError(f"range {range_header} is outside the {size} bytes")
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start : end + 1], status_code=206, media_type=media_type, headers=headers)
