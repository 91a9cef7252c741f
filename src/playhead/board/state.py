"""The board's shared state, as one replica keeps it: sessions, waiting requests, exports.

Applying the board's events in order rebuilds it; `events` turns it back into events for a
planner that starts. The Redis board keeps the same state in Redis hashes.
"""

from __future__ import annotations

from playhead.board.base import (
    BoardEvent,
    ExportOver,
    ExportWanted,
    RequestDone,
    Requested,
    SessionLeft,
    SessionReport,
)


class BoardState:
    def __init__(self) -> None:
        self.sessions: dict[str, SessionReport] = {}
        self.requests: dict[tuple[str, int, str], Requested] = {}
        self.exports: dict[str, ExportWanted] = {}

    def apply(self, event: BoardEvent) -> None:
        if isinstance(event, SessionReport):
            self.sessions[event.session] = event
        elif isinstance(event, SessionLeft):
            self.sessions.pop(event.session, None)
        elif isinstance(event, Requested):
            self.requests[(event.render, event.segment, event.owner)] = event
        elif isinstance(event, RequestDone):
            self.requests.pop((event.render, event.segment, event.owner), None)
        elif isinstance(event, ExportWanted):
            self.exports[event.export] = event
        elif isinstance(event, ExportOver):
            self.exports.pop(event.export, None)

    def events(self) -> list[BoardEvent]:
        out: list[BoardEvent] = [*self.exports.values(), *self.sessions.values()]
        out.extend(self.requests.values())
        return out

    def forget_replica(self, replica: str) -> list[BoardEvent]:
        """Drop what a dead replica pinned; the events that undo it (exports stay: they are
        nobody's, they finish whoever is alive)."""
        undo: list[BoardEvent] = []
        for sid, s in list(self.sessions.items()):
            if s.replica == replica:
                del self.sessions[sid]
                undo.append(SessionLeft(session=sid, replica=replica))
        for key, r in list(self.requests.items()):
            if r.replica == replica:
                del self.requests[key]
                undo.append(
                    RequestDone(render=r.render, segment=r.segment, owner=r.owner, replica=replica)
                )
        return undo
