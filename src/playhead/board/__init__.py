"""The board: the shared demand of every replica's viewers, the live workers, the planner's
lease. In memory for one process; in Redis for a fleet."""

from playhead.board.base import (
    AssetDeleted,
    Board,
    BoardEvent,
    BoardListener,
    ExportOver,
    ExportWanted,
    RequestDone,
    Requested,
    SessionLeft,
    SessionReport,
    WorkerInfo,
)
from playhead.board.memory import MemoryBoard

__all__ = [
    "AssetDeleted",
    "Board",
    "BoardEvent",
    "BoardListener",
    "ExportOver",
    "ExportWanted",
    "MemoryBoard",
    "RequestDone",
    "Requested",
    "SessionLeft",
    "SessionReport",
    "WorkerInfo",
]
