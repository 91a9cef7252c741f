"""One root exception, mapped once.

Every error a user can cause is a `PlayheadError` carrying what an HTTP response or a CLI
message needs: a status, a stable machine-readable code and a human message. Subclasses also
inherit the matching built-in so callers may catch `ValueError` or `FileNotFoundError` as usual.
"""

from __future__ import annotations


class PlayheadError(Exception):
    """Root of every error playhead raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidMediaError(PlayheadError, ValueError):
    """The file is not a decodable video: not media, no video stream, zero frames, corrupt."""

    status = 415
    code = "invalid_media"


class MediaTooLargeError(PlayheadError, ValueError):
    """The file is over a configured limit (size, duration, resolution)."""

    status = 413
    code = "media_too_large"


class NotFoundError(PlayheadError, LookupError):
    """An id that names nothing: an asset, a render, a segment out of range, an export."""

    status = 404
    code = "not_found"

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return self.message


class InvalidParamsError(PlayheadError, ValueError):
    """Effect parameters failed validation; the message names the parameter."""

    status = 422
    code = "invalid_params"


class UnknownEffectError(PlayheadError, KeyError):
    """Named in a request body, so the body is what is wrong: 422, like a bad parameter."""

    status = 422
    code = "unknown_effect"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class UnsupportedError(PlayheadError, ValueError):
    """A valid request for something this effect or format cannot do."""

    status = 422
    code = "unsupported"


class ModelWeightsError(PlayheadError, RuntimeError):
    """Model weights are missing or corrupt; the message names the command that fixes it."""

    status = 503
    code = "model_weights"


class FetchError(PlayheadError, RuntimeError):
    """A pinned file could not be fetched from its package registry."""

    status = 503
    code = "fetch_failed"


class FrameIndexError(PlayheadError, RuntimeError):
    """Decoding did not produce the frames the index promised (a corrupt mezzanine)."""

    status = 500
    code = "frame_index"
