"""The viewers connected to this replica: WebSocket sessions, and players inferred from their
segment requests.

A viewer's reports go to the board only when they change the plan — a new viewer, a seek, play
or pause, a rate change, or the playhead entering another segment (its horizon moved on) — so
a browser's report every 500 ms costs the planner one event per segment played. Each
connection has exactly one listener, which gets the state changes of its render's segments.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playhead.board import Board, SessionLeft, SessionReport
from playhead.catalog import Catalog
from playhead.errors import NotFoundError
from playhead.scheduler import SegmentState, Session

Listener = Callable[[dict[str, Any]], None]


@dataclass
class Viewer:
    session: Session
    inferred: bool
    listener: Listener | None = None
    forwarded: Session | None = None  # the last report the board has


class Viewers:
    def __init__(
        self,
        board: Board,
        catalog: Catalog,
        inferred_ttl_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.board = board
        self.catalog = catalog
        self.inferred_ttl_s = inferred_ttl_s
        self.clock = clock
        self._viewers: dict[str, Viewer] = {}
        self._by_render: dict[str, set[str]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._viewers)

    def sessions_of(self, render_id: str) -> list[Session]:
        """The sessions of this replica's WebSocket viewers of ``render_id``."""
        viewers = [self._viewers[v] for v in self._by_render.get(render_id, ())]
        return [v.session for v in viewers if not v.inferred]

    def watched(self, render_id: str) -> bool:
        """Someone watches ``render_id`` over a WebSocket (their reports beat guesses)."""
        return any(not self._viewers[v].inferred for v in self._by_render.get(render_id, ()))

    async def report(self, viewer_id: str, session: Session, inferred: bool = False) -> None:
        viewer = self._viewers.get(viewer_id)
        if viewer is None:
            viewer = self._viewers[viewer_id] = Viewer(session, inferred)
        elif viewer.session.render != session.render:
            self._by_render[viewer.session.render].discard(viewer_id)
        viewer.session, viewer.inferred = session, inferred
        self._by_render[session.render].add(viewer_id)
        if self._changes_plan(viewer.forwarded, session):
            viewer.forwarded = session
            await self.board.publish(
                SessionReport(
                    session=session.id,
                    render=session.render,
                    playhead=session.playhead,
                    playing=session.playing,
                    rate=session.rate,
                    at=session.reported_at,
                    inferred=inferred,
                )
            )

    def attach(self, viewer_id: str, listener: Listener) -> None:
        """The connection's one listener (a second watch replaces, never adds)."""
        if viewer_id in self._viewers:
            self._viewers[viewer_id].listener = listener

    async def leave(self, viewer_id: str) -> None:
        viewer = self._viewers.pop(viewer_id, None)
        if viewer is None:
            return
        ids = self._by_render.get(viewer.session.render)
        if ids is not None:
            ids.discard(viewer_id)
            if not ids:
                del self._by_render[viewer.session.render]
        if viewer.forwarded is not None:
            await self.board.publish(SessionLeft(session=viewer.session.id))

    async def expire(self, now: float) -> None:
        """Inferred viewers that stopped requesting have gone away."""
        stale = [
            vid
            for vid, v in self._viewers.items()
            if v.inferred and now - v.session.reported_at > self.inferred_ttl_s
        ]
        for vid in stale:
            await self.leave(vid)

    def segment_changed(self, render_id: str, k: int, state: SegmentState) -> None:
        message = {"type": "segment", "render": render_id, "index": k, "state": state.value}
        for vid in list(self._by_render.get(render_id, ())):
            listener = self._viewers[vid].listener
            if listener is not None:
                listener(message)

    def _changes_plan(self, old: Session | None, new: Session) -> bool:
        if old is None or old.render != new.render:
            return True
        if old.playing != new.playing or old.rate != new.rate:
            return True
        try:
            asset = self.catalog.asset(self.catalog.render(new.render).asset)
        except NotFoundError:
            return False
        fps, seg = float(asset.fps), asset.segment_frames
        elapsed = max(0.0, new.reported_at - old.reported_at)
        expected = old.playhead + (elapsed * fps * old.rate if old.moving else 0)
        if abs(new.playhead - expected) > seg:
            return True  # a seek
        return new.playhead // seg != old.playhead // seg  # the horizon moved a segment on


def segment_message(render_id: str, states: list[SegmentState]) -> dict[str, Any]:
    return {"type": "render", "render": render_id, "segments": [s.value for s in states]}
