"""The browser editor: the static files of ``web/`` at ``/`` and the pinned hls.js from npm.

playhead runs from a source checkout (``pip install -e``), so ``web/`` is found next to
``src/``. hls.js is installed into ``web/node_modules`` by ``make setup``, never committed.
Included last: API routes always win over a file name.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from playhead.errors import NotFoundError, PlayheadError

router = APIRouter()

WEB = Path(__file__).resolve().parents[4] / "web"
HLS = WEB / "node_modules" / "hls.js" / "dist" / "hls.mjs"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
REVALIDATE = {"Cache-Control": "no-cache"}  # edits show on reload; the ETag keeps it cheap


class WebDependencyMissingError(PlayheadError, FileNotFoundError):
    """The editor's npm dependencies are not installed."""

    status = 500
    code = "web_dependency_missing"


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return _file(WEB / "index.html")


@router.get("/vendor/hls.mjs", include_in_schema=False)
def hls() -> FileResponse:
    if not HLS.is_file():
        raise WebDependencyMissingError(
            f"hls.js is not installed ({HLS} is missing): run `make setup`"
        )
    return _file(HLS)


@router.get("/{path:path}", include_in_schema=False)
def static(path: str) -> FileResponse:
    if path.startswith("api/"):
        raise NotFoundError(f"no API route /{path}")
    target = (WEB / path).resolve()
    if (
        not target.is_relative_to(WEB)
        or "node_modules" in target.relative_to(WEB).parts
        or target.suffix not in TYPES
        or not target.is_file()
    ):
        raise NotFoundError(f"no file /{path}")
    return _file(target)


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=TYPES[path.suffix], headers=REVALIDATE)
