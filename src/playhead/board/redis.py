"""The board in Redis: every replica's viewers' needs, shared; plain Redis, no scripts.

    ph:<name>:events              a stream of every event, in order (capped)
    ph:<name>:sessions            hash: session → its last report
    ph:<name>:requests            hash: render:k:owner → the request
    ph:<name>:exports             hash: export → the request for it
    ph:<name>:replica:<id>        a replica's heartbeat (expires)
    ph:<name>:workers             hash: worker → what it announced, and until when
    ph:<name>:planner             the planning lease: the replica holding it (expires)
    ph:<name>:playing             present while a viewer somewhere plays (expires)
    ph:<name>:fleet               the planner's demand for workers, per device class (expires)

`publish` updates the state and appends the event in one transaction, so the state a new
planner reads and the events it then tails agree; every replica tails the stream (the
listeners). The lease is taken with ``SET NX PX`` and renewed or released under ``WATCH``, so
only its holder can extend it. Times of workers' announcements are the announcers' clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from playhead.board.base import (
    EVENT,
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
from playhead.board.state import BoardState
from playhead.errors import PlayheadError
from playhead.redis_client import client, shown

log = logging.getLogger(__name__)

STREAM_LEN = 100_000
TAIL_MS = 500  # one blocking read of the stream; also how long closing may wait for it
T = TypeVar("T")


class BoardUnavailable(PlayheadError, ConnectionError):
    """Redis cannot be reached: the board's state is unknown until it comes back."""

    status = 503
    code = "board_unavailable"


class RedisBoard:
    def __init__(
        self, client: aioredis.Redis, url: str, name: str, replica: str, timeout_s: float = 5.0
    ) -> None:
        self.replica = replica
        self.timeout_s = timeout_s
        self._r = client
        self._url = shown(url)
        self._k = f"ph:{name}:"
        self._listeners: list[BoardListener] = []
        self._tail: asyncio.Task[None] | None = None
        self._closing = False
        self._last_id = "0-0"

    @classmethod
    async def connect(
        cls, url: str, name: str = "segments", replica: str | None = None
    ) -> RedisBoard:
        r = client(url, connect_timeout_s=5)  # every call is bounded by asyncio.timeout
        board = cls(r, url, name, replica or f"replica-{uuid.uuid4().hex[:8]}")
        last: Any = await board._call(lambda: r.xrevrange(board._k + "events", count=1))
        board._last_id = str(last[0][0]) if last else "0-0"  # listeners hear what comes after
        return board

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await fn()
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:  # TimeoutError too
            why = str(e) or "no answer in time"
            raise BoardUnavailable(f"the board at {self._url} is unreachable ({why})") from e

    # ---- events -----------------------------------------------------------------------------

    async def publish(self, event: BoardEvent) -> None:
        event = event.model_copy(update={"replica": event.replica or self.replica})
        text = event.model_dump_json()

        async def run() -> None:
            pipe = self._r.pipeline(transaction=True)
            self._record(pipe, event, text)
            pipe.xadd(self._k + "events", {"e": text}, maxlen=STREAM_LEN, approximate=True)
            await pipe.execute()

        await self._call(run)

    def _record(self, pipe: Any, event: BoardEvent, text: str) -> None:
        k = self._k
        if isinstance(event, SessionReport):
            pipe.hset(k + "sessions", event.session, text)
        elif isinstance(event, SessionLeft):
            pipe.hdel(k + "sessions", event.session)
        elif isinstance(event, Requested):
            pipe.hset(k + "requests", f"{event.render}:{event.segment}:{event.owner}", text)
        elif isinstance(event, RequestDone):
            pipe.hdel(k + "requests", f"{event.render}:{event.segment}:{event.owner}")
        elif isinstance(event, ExportWanted):
            pipe.hset(k + "exports", event.export, text)
        elif isinstance(event, ExportOver):
            pipe.hdel(k + "exports", event.export)

    def listen(self, listener: BoardListener) -> Callable[[], None]:
        self._listeners.append(listener)
        if self._tail is None:  # the stream is tailed once someone listens
            self._tail = asyncio.create_task(self._follow(), name="board-tail")
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def _follow(self) -> None:
        """Tail the event stream for the listeners; survive Redis restarts. It stops by
        itself when closing: redis-py cannot cancel a blocking read cleanly (the connection
        is left mid-command and the task may never finish), so it is never cancelled."""
        backoff = 0.1
        while not self._closing:
            try:
                async with asyncio.timeout(TAIL_MS / 1000 + self.timeout_s):
                    found: Any = await self._r.xread(
                        {self._k + "events": self._last_id}, block=TAIL_MS
                    )
                backoff = 0.1
            except (RedisError, OSError) as e:  # TimeoutError too
                log.warning("board tail: %s; retrying in %.1f s", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            for _, entries in found or ():
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self._deliver(fields.get("e", ""))

    def _deliver(self, text: str) -> None:
        try:
            event = EVENT.validate_json(text)
        except ValueError:
            log.warning("board: ignoring a malformed event %r", text[:200])
            return
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # one listener's bug must not silence the others
                log.exception("board listener failed")

    async def snapshot(self) -> list[BoardEvent]:
        async def run() -> list[Any]:
            pipe = self._r.pipeline(transaction=True)
            for name in ("exports", "sessions", "requests"):
                pipe.hvals(self._k + name)
            result: list[Any] = await pipe.execute()
            return result

        state = BoardState()
        for values in await self._call(run):
            for text in values:
                with contextlib.suppress(ValueError):
                    state.apply(EVENT.validate_json(text))
        return state.events()

    # ---- replicas ---------------------------------------------------------------------------

    async def heartbeat(self, ttl_s: float) -> None:
        key = self._k + "replica:" + self.replica
        await self._call(lambda: self._r.set(key, "1", px=int(ttl_s * 1000)))

    async def dead_replicas(self, replicas: set[str]) -> set[str]:
        if not replicas:
            return set()
        ordered = sorted(replicas)

        async def run() -> list[Any]:
            pipe = self._r.pipeline(transaction=False)
            for r in ordered:
                pipe.exists(self._k + "replica:" + r)
            result: list[Any] = await pipe.execute()
            return result

        alive = await self._call(run)
        return {r for r, up in zip(ordered, alive, strict=True) if not up}

    async def forget_replica(self, replica: str) -> None:
        """Undo what a dead replica pinned, through events every replica sees."""
        state = BoardState()
        for event in await self.snapshot():
            state.apply(event)
        for undo in state.forget_replica(replica):
            await self.publish(undo)

    # ---- workers ----------------------------------------------------------------------------

    async def announce_worker(self, worker: WorkerInfo, ttl_s: float) -> None:
        text = json.dumps({"info": worker.model_dump(), "until": time.time() + ttl_s})
        await self._call(lambda: self._r.hset(self._k + "workers", worker.name, text))

    async def worker_left(self, name: str) -> None:
        await self._call(lambda: self._r.hdel(self._k + "workers", name))

    async def workers(self) -> list[WorkerInfo]:
        raw: dict[str, str] = await self._call(
            lambda: self._r.hgetall(self._k + "workers")  # type: ignore[arg-type,return-value]
        )
        now, alive, gone = time.time(), [], []
        for name, text in raw.items():
            try:
                entry = json.loads(text)
                if float(entry["until"]) < now:
                    gone.append(name)
                    continue
                alive.append(WorkerInfo.model_validate(entry["info"]))
            except (ValueError, KeyError, TypeError):
                gone.append(name)
        if gone:  # a worker killed without saying goodbye
            await self._call(lambda: self._r.hdel(self._k + "workers", *gone))
        return sorted(alive, key=lambda w: w.name)

    # ---- whether anyone plays ----------------------------------------------------------------

    async def set_playing(self, playing: bool, ttl_s: float) -> None:
        key = self._k + "playing"
        if playing:
            await self._call(lambda: self._r.set(key, "1", px=int(ttl_s * 1000)))
        else:
            await self._call(lambda: self._r.delete(key))

    async def playing(self) -> bool:
        return bool(await self._call(lambda: self._r.exists(self._k + "playing")))

    # ---- what the fleet needs -----------------------------------------------------------------

    async def set_fleet(self, fleet: dict[str, Any], ttl_s: float) -> None:
        text = json.dumps(fleet)
        await self._call(lambda: self._r.set(self._k + "fleet", text, px=int(ttl_s * 1000)))

    async def fleet(self) -> dict[str, Any] | None:
        text = await self._call(lambda: self._r.get(self._k + "fleet"))
        if text is None:
            return None
        value = json.loads(text)
        return value if isinstance(value, dict) else None

    # ---- the planning lease -----------------------------------------------------------------

    async def lead(self, ttl_s: float) -> bool:
        key, ms = self._k + "planner", int(ttl_s * 1000)
        if await self._call(lambda: self._r.set(key, self.replica, nx=True, px=ms)):
            return True
        return await self._if_mine(lambda pipe: pipe.pexpire(key, ms))

    async def resign(self) -> None:
        await self._if_mine(lambda pipe: pipe.delete(self._k + "planner"))

    async def _if_mine(self, action: Callable[[Any], Any]) -> bool:
        """Run ``action`` on the lease only while this replica holds it (optimistic lock)."""
        key = self._k + "planner"

        async def run() -> bool:
            async with self._r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    if await pipe.get(key) != self.replica:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    action(pipe)
                    await pipe.execute()
                    return True
                except WatchError:
                    return False

        return await self._call(run)

    async def close(self) -> None:
        self._closing = True
        if self._tail is not None:
            await self._tail  # back within one blocking read
        self._listeners.clear()
        await self._r.aclose()
