"""Masks from clicks: a paused frame, a few clicks, the subject's mask at once.

The frame's embedding (the encoder's output, seconds on a CPU) is computed once per frame and
model and kept in the store beside the asset (`embedding_key`), so any replica answers later
clicks on that frame with the decoder alone (tens of milliseconds); the most recent ones are
also kept in memory. It is stored as float16 and always used as read back from the store, so
the first click on a frame and every later one give the same mask.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from playhead.catalog import Catalog
from playhead.effects.sam import MODEL_TAG, Embedding, Point, Sam
from playhead.errors import InvalidParamsError, NotFoundError
from playhead.media.decode import MezzanineReader
from playhead.store import Store
from playhead.store.layout import asset_key
from playhead.types import FrameRange

MEMORY = 16  # embeddings kept in memory (4 MB each): the frames being clicked on now


class MaskPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float = Field(description="frame pixels, from the left")
    y: float = Field(description="frame pixels, from the top")
    label: Literal[0, 1] = Field(1, description="1: part of the subject, 0: not")


class MaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[MaskPoint] = Field(default_factory=list, max_length=64)
    box: tuple[float, float, float, float] | None = Field(
        None, description="[x0, y0, x1, y1] in frame pixels: the subject is inside"
    )


def embedding_key(asset_id: str, frame: int) -> str:
    return asset_key(asset_id, f"embeddings/{MODEL_TAG}/{frame}.npy")


class MaskService:
    def __init__(self, catalog: Catalog, store: Store) -> None:
        self.catalog = catalog
        self.store = store
        self._sam: Sam | None = None
        self._lock = threading.Lock()
        self._memory: OrderedDict[tuple[str, int], Embedding] = OrderedDict()
        self._computing: dict[tuple[str, int], threading.Lock] = {}

    def mask(self, asset_id: str, frame: int, request: MaskRequest) -> dict[str, Any]:
        """The mask of frame ``frame`` for the clicks (blocking: run it in a thread)."""
        asset = self.catalog.asset(asset_id)
        if not 0 <= frame < asset.frames:
            raise NotFoundError(f"frame {frame} is outside 0..{asset.frames - 1}")
        w, h = asset.width, asset.height
        points = [Point(p.x, p.y, p.label) for p in request.points]
        if not points and request.box is None:
            raise InvalidParamsError("give at least one point or a box")
        for p in points:
            if not (0 <= p.x < w and 0 <= p.y < h):
                raise InvalidParamsError(f"point ({p.x}, {p.y}) is outside the {w}x{h} frame")
        if request.box is not None:
            x0, y0, x1, y1 = request.box
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise InvalidParamsError(
                    f"box {list(request.box)} must have x0 < x1 and y0 < y1 inside the {w}x{h} "
                    "frame"
                )
        embedding = self.embedding(asset_id, frame)
        seg = self._model().segment(embedding, (h, w), points, request.box)
        ok, png = cv2.imencode(".png", seg.mask)
        assert ok, "PNG encoding of a uint8 mask cannot fail"
        return {
            "score": round(seg.score, 4),
            "width": w,
            "height": h,
            "png": base64.b64encode(png.tobytes()).decode("ascii"),
        }

    def embedding(self, asset_id: str, frame: int) -> Embedding:
        """Frame ``frame``'s embedding: from memory, from the store, or computed once (two
        first clicks on one frame compute it once)."""
        key = (asset_id, frame)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            with self._lock:
                if key in self._memory:
                    return self._memory[key]
            stored = self.store.get(embedding_key(asset_id, frame))
            if stored is None:
                stored = self._compute(asset_id, frame)
                self.store.put(embedding_key(asset_id, frame), stored, overwrite=True)
            embedding: Embedding = np.load(io.BytesIO(stored)).astype(np.float32)
            with self._lock:
                self._memory[key] = embedding
                while len(self._memory) > MEMORY:
                    self._memory.popitem(last=False)
                self._computing.pop(key, None)
            return embedding

    def _compute(self, asset_id: str, frame: int) -> bytes:
        adir = self.catalog.local(asset_id)
        _, index = adir.load()
        with MezzanineReader(adir.mezzanine, index) as reader:
            rgb = reader.read(FrameRange(frame, frame + 1))[0]
        buf = io.BytesIO()
        np.save(buf, self._model().embed(rgb).astype(np.float16))
        return buf.getvalue()

    def _model(self) -> Sam:
        with self._lock:
            if self._sam is None:
                self._sam = Sam()
            return self._sam

    def forget_asset(self, asset_id: str) -> None:
        with self._lock:
            for key in [k for k in self._memory if k[0] == asset_id]:
                del self._memory[key]
