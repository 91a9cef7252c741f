"""The board: what every replica's viewers need, shared by all replicas, and who is planning.

Each API replica pins its viewers' needs on the board — playhead reports that change the plan,
segment requests waiting for a render, exports — and the one replica that holds the planning
lease reads every replica's events in order and plans for all of them. The board also lists
the live workers (the fleet's capacity) and the live replicas (a replica that dies takes its
viewers' sessions and requests with it).

The in-process board is all of this in memory for one process; the Redis board shares it.
Events are typed and validated at the edge (JSON on the wire).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    replica: str = ""  # who published it (filled in by the board)


class SessionReport(_Event):
    """A viewer's playhead, when it changes the plan (the replica filters steady reports)."""

    kind: Literal["session"] = "session"
    session: str
    render: str
    playhead: int = Field(ge=0)
    playing: bool
    rate: float = Field(ge=0, le=16)
    at: float
    inferred: bool = False  # guessed from segment requests (no WebSocket reports)


class SessionLeft(_Event):
    kind: Literal["left"] = "left"
    session: str


class Requested(_Event):
    """A player waits for segment k, which its replica just found missing from the store."""

    kind: Literal["requested"] = "requested"
    render: str
    segment: int = Field(ge=0)
    owner: str
    at: float


class RequestDone(_Event):
    """The request is over: served, timed out, or its client went away."""

    kind: Literal["request_done"] = "request_done"
    render: str
    segment: int = Field(ge=0)
    owner: str


class ExportWanted(_Event):
    kind: Literal["export"] = "export"
    export: str
    render: str
    at: float


class ExportOver(_Event):
    kind: Literal["export_over"] = "export_over"
    export: str
    render: str


class AssetDeleted(_Event):
    kind: Literal["asset_deleted"] = "asset_deleted"
    asset: str
    renders: list[str]


BoardEvent = Annotated[
    SessionReport
    | SessionLeft
    | Requested
    | RequestDone
    | ExportWanted
    | ExportOver
    | AssetDeleted,
    Field(discriminator="kind"),
]
EVENT: TypeAdapter[BoardEvent] = TypeAdapter(BoardEvent)

BoardListener = Callable[[BoardEvent], None]


class WorkerInfo(BaseModel):
    """A live worker, as it announces itself (its capacity counts for planning)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    host: str = ""
    device: str = "cpu"
    effects: list[str] = []  # the effects installed in its image (it can run every one)
    busy: float = 0.0  # share of its time spent on jobs
    current: str | None = None
    seen_at: float = 0.0


class Board(Protocol):
    replica: str

    async def publish(self, event: BoardEvent) -> None:
        """Record the event in the shared state and tell every replica's listeners."""
        ...

    def listen(self, listener: BoardListener) -> Callable[[], None]:
        """Every event from every replica from now on, in order; returns the unsubscribe.
        Listeners run on the event loop and must not block."""
        ...

    async def snapshot(self) -> list[BoardEvent]:
        """The shared state as events, for a planner that starts: sessions, requests, exports
        of live replicas."""
        ...

    async def heartbeat(self, ttl_s: float) -> None:
        """This replica is alive for ``ttl_s`` more seconds."""
        ...

    async def dead_replicas(self, replicas: set[str]) -> set[str]:
        """Which of ``replicas`` stopped heartbeating."""
        ...

    async def forget_replica(self, replica: str) -> None:
        """Drop a dead replica's sessions and requests from the shared state."""
        ...

    async def announce_worker(self, worker: WorkerInfo, ttl_s: float) -> None: ...

    async def worker_left(self, name: str) -> None: ...

    async def workers(self) -> list[WorkerInfo]:
        """Workers seen within their time to live."""
        ...

    async def set_playing(self, playing: bool, ttl_s: float) -> None:
        """The planner says whether any viewer of the fleet is playing (for ``ttl_s``)."""
        ...

    async def playing(self) -> bool:
        """Is any viewer playing? (Reserve workers then keep out of far-ahead work.)"""
        ...

    async def set_fleet(self, fleet: dict[str, Any], ttl_s: float) -> None:
        """The planner publishes what the fleet needs (per device class: desired workers and
        what they are made of) for ``ttl_s``: every replica answers the autoscaler alike."""
        ...

    async def fleet(self) -> dict[str, Any] | None:
        """The planner's last published fleet demand; None when none is current."""
        ...

    async def lead(self, ttl_s: float) -> bool:
        """Take or keep the planning lease for ``ttl_s``; True while this replica holds it."""
        ...

    async def resign(self) -> None: ...

    async def close(self) -> None: ...
