"""Reserve workers: while someone is playing, they take only work due soon.

A seek makes one segment urgent at once; if every worker is busy with prefetch far ahead of
the playheads, the seek waits for a whole segment to finish. So some workers are a reserve:
while any viewer of the fleet plays (the planner says so on the board), they claim only work
due within ``seconds``, and are free (or soon free) when a seek comes. Nobody playing, they take
anything: exports and paused prefetch get every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from playhead.board import Board
from playhead.errors import PlayheadError
from playhead.scheduler import Priority, encode_priority


class Headroom:
    def __init__(self, board: Board, seconds: float = 6.0) -> None:
        self.board = board
        self.seconds = seconds
        self.playing = False

    def __call__(self, now: float) -> float:
        """The least urgent priority a reserve worker may claim now."""
        if not self.playing:
            return math.inf
        return encode_priority(Priority.PLAYING, now + self.seconds)

    async def follow(self, every_s: float = 0.25) -> None:
        """Keep `playing` current from the board until cancelled."""
        while True:
            with contextlib.suppress(PlayheadError):  # Redis restarting: keep the last answer
                self.playing = await self.board.playing()
            await asyncio.sleep(every_s)
