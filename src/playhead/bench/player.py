"""A simulated HLS player, like hls.js: what a viewer would see, measured.

Fragments load in order from the playhead, one at a time, up to a 30 s buffer target; a seek
aborts the load in flight and starts again at the new position. A playback clock advances in
wall time while the fragment under the playhead is loaded, and stalls when it is not. Like our
editor, the player reports its playhead over the session WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

TICK_S = 0.02
REPORT_EVERY_S = 0.5


@dataclass
class Step:
    """One scripted action: ``play``, ``pause``, or ``seek`` to ``at`` (0..1 of the video);
    then watch for ``hold_s`` seconds."""

    action: str
    hold_s: float
    at: float = 0.0


@dataclass
class PlayerReport:
    startup_s: float | None = None
    seeks_s: list[float] = field(default_factory=list)
    stalls: int = 0
    stall_s: float = 0.0
    watched_s: float = 0.0
    fragments: int = 0
    unfinished_seeks: int = 0


class Player:
    def __init__(
        self, base: str, render: dict[str, Any], client: httpx.AsyncClient, buffer_s: float = 30.0
    ) -> None:
        self.base = base
        self.render = render
        self.client = client
        self.buffer_s = buffer_s
        self.fps = float(render["fps"])
        self.report = PlayerReport()
        self.durations: list[float] = []
        self.loaded: set[int] = set()
        self.position = 0.0  # seconds of media
        self.playing = False
        self._waiting_since: float | None = None  # startup or seek, until the fragment loads
        self._seek_started: float | None = None
        self._stalled_since: float | None = None
        self._loader: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None

    async def run(self, script: list[Step]) -> PlayerReport:
        url = self.base + self.render["playlists"]["composite"]
        playlist = (await self.client.get(url)).text
        self.durations = [float(d) for d in re.findall(r"#EXTINF:([0-9.]+),", playlist)]
        self._prefix = url.rsplit("/", 1)[0]
        ws_url = self.base.replace("http", "ws", 1) + "/api/sessions"
        async with connect(ws_url) as ws:
            self._ws = ws
            await ws.send(json.dumps({"type": "watch", "render": self.render["id"]}))
            drain = asyncio.create_task(self._drain(ws))
            reporter = asyncio.create_task(self._report_loop())
            self._waiting_since = time.perf_counter()
            self._restart_loader()
            try:
                for step in script:
                    await self._do(step)
                    await self._watch(step.hold_s)
            finally:
                for task in (drain, reporter, self._loader):
                    if task:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await task
        await self._do(Step("pause", 0))  # closes an unfinished seek
        if self._stalled_since is not None:
            self.report.stall_s += time.perf_counter() - self._stalled_since
        return self.report

    # ---- script ---------------------------------------------------------------------------

    async def _do(self, step: Step) -> None:
        if self._seek_started is not None:
            # the last seek never showed a frame: count the time waited (a lower bound)
            # rather than leave the worst seeks out of the figures
            self.report.seeks_s.append(time.perf_counter() - self._seek_started)
            self.report.unfinished_seeks += 1
            self._seek_started = None
        if step.action == "play":
            self.playing = True
        elif step.action == "pause":
            self.playing = False
        elif step.action == "seek":
            self.position = step.at * sum(self.durations)
            self._seek_started = time.perf_counter()
            self._end_stall()
            self._restart_loader()
        await self._send_playhead()

    async def _watch(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        last = time.perf_counter()
        while (now := time.perf_counter()) < end:
            dt, last = now - last, now
            self._advance(dt, now)
            await asyncio.sleep(TICK_S)

    def _advance(self, dt: float, now: float) -> None:
        k = self._segment_at(self.position)
        if k is None:  # the end of the video
            self.playing = False
            return
        have = k in self.loaded
        if have:
            self._first_frame(now)
        if not self.playing:
            return
        if have:
            self._end_stall()
            self.position += dt
            self.report.watched_s += dt
        elif self._stalled_since is None and self._waiting_since is None and not self._seek_started:
            self._stalled_since = now
            self.report.stalls += 1

    def _first_frame(self, now: float) -> None:
        if self._waiting_since is not None and self.report.startup_s is None:
            self.report.startup_s = now - self._waiting_since
            self._waiting_since = None
        if self._seek_started is not None:
            self.report.seeks_s.append(now - self._seek_started)
            self._seek_started = None

    def _end_stall(self) -> None:
        if self._stalled_since is not None:
            self.report.stall_s += time.perf_counter() - self._stalled_since
            self._stalled_since = None

    def _segment_at(self, t: float) -> int | None:
        acc = 0.0
        for k, d in enumerate(self.durations):
            if t < acc + d - 1e-9:
                return k
            acc += d
        return None

    # ---- loading --------------------------------------------------------------------------

    def _restart_loader(self) -> None:
        if self._loader:
            self._loader.cancel()  # like hls.js: a seek aborts the fragment in flight
        self._loader = asyncio.create_task(self._load())

    async def _load(self) -> None:
        while True:
            k = self._next_needed()
            if k is None:
                await asyncio.sleep(TICK_S)
                continue
            r = await self.client.get(f"{self._prefix}/{k}.m4s")
            if r.status_code == 200:
                self.loaded.add(k)
                self.report.fragments += 1
            else:
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))

    def _next_needed(self) -> int | None:
        first = self._segment_at(self.position)
        if first is None:
            return None
        ahead = 0.0
        for k in range(first, len(self.durations)):
            if k not in self.loaded:
                return k
            ahead += self.durations[k]
            if ahead >= self.buffer_s:
                return None
        return None

    # ---- session reports ------------------------------------------------------------------

    async def _send_playhead(self) -> None:
        if self._ws is None:
            return
        frame = min(math.floor(self.position * self.fps), int(self.render["frames"]) - 1)
        msg = {"type": "playhead", "frame": frame, "playing": self.playing, "rate": 1.0}
        with contextlib.suppress(Exception):
            await self._ws.send(json.dumps(msg))

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            if self.playing:
                await self._send_playhead()

    async def _drain(self, ws: ClientConnection) -> None:
        async for _ in ws:
            pass
