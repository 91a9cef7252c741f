"""The in-process board: one replica, so it always plans; everything in memory."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from playhead.board.base import (
    BoardEvent,
    BoardListener,
    WorkerInfo,
)
from playhead.board.state import BoardState


class MemoryBoard:
    def __init__(self, replica: str | None = None, clock: Callable[[], float] = time.time):
        self.replica = replica or f"replica-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.state = BoardState()
        self._listeners: list[BoardListener] = []
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}
        self._playing_until = 0.0
        self._fleet: tuple[dict[str, Any] | None, float] = (None, 0.0)

    async def publish(self, event: BoardEvent) -> None:
        event = event.model_copy(update={"replica": self.replica})
        self.state.apply(event)
        for listener in list(self._listeners):
            listener(event)

    def listen(self, listener: BoardListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def snapshot(self) -> list[BoardEvent]:
        return self.state.events()

    async def heartbeat(self, ttl_s: float) -> None:
        return None

    async def dead_replicas(self, replicas: set[str]) -> set[str]:
        return set()

    async def forget_replica(self, replica: str) -> None:
        self.state.forget_replica(replica)

    async def announce_worker(self, worker: WorkerInfo, ttl_s: float) -> None:
        self._workers[worker.name] = (worker, self.clock() + ttl_s)

    async def worker_left(self, name: str) -> None:
        self._workers.pop(name, None)

    async def workers(self) -> list[WorkerInfo]:
        now = self.clock()
        return [w for w, until in self._workers.values() if until > now]

    async def set_playing(self, playing: bool, ttl_s: float) -> None:
        self._playing_until = self.clock() + ttl_s if playing else 0.0

    async def playing(self) -> bool:
        return self.clock() < self._playing_until

    async def set_fleet(self, fleet: dict[str, Any], ttl_s: float) -> None:
        self._fleet = (json.loads(json.dumps(fleet)), self.clock() + ttl_s)

    async def fleet(self) -> dict[str, Any] | None:
        fleet, until = self._fleet
        return fleet if self.clock() < until else None

    async def lead(self, ttl_s: float) -> bool:
        return True

    async def resign(self) -> None:
        return None

    async def close(self) -> None:
        self._listeners.clear()
