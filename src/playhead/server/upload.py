"""Streaming multipart upload: the ``file`` field goes straight to disk, counted as it goes.

Starlette's form parser would spool the whole body before we could look at it; here an upload
over the size limit is refused as soon as it crosses the limit, and nothing is held in memory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
from starlette.requests import Request

from playhead.errors import MediaTooLargeError, PlayheadError


class BadUploadError(PlayheadError, ValueError):
    status = 400
    code = "bad_upload"


_SAFE = re.compile(r"[^A-Za-z0-9._ -]+")


async def receive_file(request: Request, dest: Path, max_bytes: int) -> str:
    """Write the multipart field ``file`` to ``dest``; return the client's file name."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise BadUploadError("expected a multipart/form-data upload with a 'file' field")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise MediaTooLargeError(f"the upload is over the {max_bytes / 1e6:.0f} MB limit")

    part = _FilePart(dest, max_bytes)
    parser = MultipartParser(params[b"boundary"], part.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except PlayheadError:
        raise
    except Exception as e:
        raise BadUploadError(f"malformed multipart upload ({type(e).__name__})") from e
    finally:
        part.close()
    if part.filename is None:
        raise BadUploadError("the upload has no 'file' field")
    return part.filename


class _FilePart:
    """Callbacks for python-multipart's streaming parser: write the ``file`` part to disk."""

    def __init__(self, dest: Path, max_bytes: int) -> None:
        self.dest = dest
        self.max_bytes = max_bytes
        self.filename: str | None = None
        self.written = 0
        self._file: IO[bytes] | None = None
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self.close,
        }

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._headers = {}
        if disposition.get(b"name") == b"file" and self.filename is None:
            raw = disposition.get(b"filename", b"upload").decode("utf-8", "replace")
            # a plain file name: no directories, no leading dots ("..", ".hidden")
            safe = _SAFE.sub("_", os.path.basename(raw))[:200].strip(" .")
            self.filename = safe or "upload"
            self._file = self.dest.open("wb")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is None:
            return  # another field: ignored
        self.written += end - start
        if self.written > self.max_bytes:
            raise MediaTooLargeError(f"the upload is over the {self.max_bytes / 1e6:.0f} MB limit")
        self._file.write(data[start:end])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
