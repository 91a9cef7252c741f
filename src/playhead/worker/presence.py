"""Workers announce themselves on the board: the planner's capacity is who is alive."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

from playhead.board import Board, WorkerInfo
from playhead.effects import registry
from playhead.errors import PlayheadError
from playhead.worker.loop import Worker


async def announce(
    board: Board, workers: list[Worker], device: str = "cpu", every_s: float = 2.0
) -> None:
    """Announce ``workers`` every ``every_s`` until cancelled, then say they left."""
    host = socket.gethostname()
    installed = sorted(registry.effects())
    try:
        while True:
            for w in workers:
                info = WorkerInfo(
                    name=w.name,
                    host=host,
                    device=device,
                    effects=installed,
                    busy=round(w.busy_ratio(), 3),
                    current=w.current,
                    seen_at=time.time(),
                )
                with contextlib.suppress(PlayheadError):  # Redis restarting: next time
                    await board.announce_worker(info, ttl_s=3 * every_s)
            await asyncio.sleep(every_s)
    finally:
        for w in workers:
            with contextlib.suppress(PlayheadError, OSError):
                await asyncio.shield(board.worker_left(w.name))
