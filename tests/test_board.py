"""The board, in memory and in a real redis-server: events reach every replica in order, a new
planner's snapshot is the shared state, a dead replica's needs can be undone, one planner at a
time, workers that stop announcing leave the fleet."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from waiting import eventually_async

from playhead.board import (
    Board,
    BoardEvent,
    ExportOver,
    ExportWanted,
    MemoryBoard,
    RequestDone,
    Requested,
    SessionLeft,
    SessionReport,
    WorkerInfo,
)
from playhead.board.redis import BoardUnavailable, RedisBoard
from playhead.cluster.process import Service
from playhead.cluster.redis_server import redis_server, redis_url

pytestmark = pytest.mark.anyio


def report(session: str, playhead: int = 0, render: str = "r") -> SessionReport:
    return SessionReport(
        session=session, render=render, playhead=playhead, playing=True, rate=1.0, at=1.0
    )


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
async def two_replicas(redis: Service) -> AsyncIterator[tuple[RedisBoard, RedisBoard]]:
    name = uuid.uuid4().hex
    a = await RedisBoard.connect(redis_url(redis), name, "replica-a")
    b = await RedisBoard.connect(redis_url(redis), name, "replica-b")
    yield a, b
    await a.close()
    await b.close()


@pytest.fixture(params=["memory", "redis"])
def boards(
    request: pytest.FixtureRequest, two_replicas: tuple[RedisBoard, RedisBoard]
) -> tuple[Board, Board]:
    """Two replicas' views of one board (the same object in memory: one process)."""
    if request.param == "memory":
        board = MemoryBoard()
        return board, board
    return two_replicas


async def test_every_replica_hears_every_event_in_order(boards: tuple[Board, Board]) -> None:
    a, b = boards
    heard_a: list[BoardEvent] = []
    heard_b: list[BoardEvent] = []
    a.listen(heard_a.append)
    b.listen(heard_b.append)
    sent: list[BoardEvent] = [
        report("s1", 0),
        report("s1", 30),
        SessionLeft(session="s1"),
        report("s2"),
    ]
    for event in sent:
        await a.publish(event)
    await eventually_async(
        lambda: len(heard_a) == len(heard_b) == 4, "four events on both replicas"
    )
    for heard in (heard_a, heard_b):
        assert [e.model_copy(update={"replica": ""}) for e in heard] == sent
        assert all(e.replica == a.replica for e in heard)


async def test_the_snapshot_is_the_shared_state(boards: tuple[Board, Board]) -> None:
    a, b = boards
    await a.publish(report("s1", 10))
    await a.publish(report("s1", 40))
    await b.publish(report("s2"))
    await a.publish(Requested(render="r", segment=3, owner="q1", at=1.0))
    await a.publish(Requested(render="r", segment=4, owner="q2", at=1.0))
    await b.publish(RequestDone(render="r", segment=3, owner="q1"))
    await a.publish(ExportWanted(export="e1", render="r", at=1.0))
    await a.publish(ExportWanted(export="e2", render="r", at=1.0))
    await b.publish(ExportOver(export="e1", render="r"))
    snapshot = await b.snapshot()
    sessions = {e.session: e.playhead for e in snapshot if isinstance(e, SessionReport)}
    assert sessions == {"s1": 40, "s2": 0}
    assert [(e.segment, e.owner) for e in snapshot if isinstance(e, Requested)] == [(4, "q2")]
    assert [e.export for e in snapshot if isinstance(e, ExportWanted)] == ["e2"]


async def test_a_dead_replicas_needs_are_undone_for_everyone(
    two_replicas: tuple[RedisBoard, RedisBoard],
) -> None:
    a, b = two_replicas
    heard: list[BoardEvent] = []
    b.listen(heard.append)
    await a.publish(report("viewer-on-a"))
    await a.publish(Requested(render="r", segment=2, owner="req-on-a", at=1.0))
    await b.publish(report("viewer-on-b"))
    await a.heartbeat(0.2)
    await b.heartbeat(30)
    await eventually_async(lambda: len(heard) == 3, "the events")
    deadline = time.monotonic() + 5
    while await b.dead_replicas({a.replica, b.replica}) != {a.replica}:
        assert time.monotonic() < deadline, "replica a never looked dead"
        await asyncio.sleep(0.05)
    await b.forget_replica(a.replica)
    snapshot = await b.snapshot()
    assert [e.session for e in snapshot if isinstance(e, SessionReport)] == ["viewer-on-b"]
    assert not [e for e in snapshot if isinstance(e, Requested)]
    await eventually_async(lambda: len(heard) == 5, "the undoing events")
    assert {type(e) for e in heard[3:]} == {SessionLeft, RequestDone}


async def test_the_only_replica_always_plans() -> None:
    assert await MemoryBoard().lead(1.0)


async def test_one_planner_at_a_time(two_replicas: tuple[RedisBoard, RedisBoard]) -> None:
    a, b = two_replicas
    assert await a.lead(30)
    assert not await b.lead(30)
    assert await a.lead(30)  # renewed by its holder
    await b.resign()  # not b's to give up
    assert not await b.lead(30)
    await a.resign()
    assert await b.lead(0.3) and not await a.lead(30)
    deadline = time.monotonic() + 5
    while not await a.lead(30):  # b stops renewing: its lease lapses
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_workers_that_stop_announcing_leave_the_fleet(boards: tuple[Board, Board]) -> None:
    a, b = boards
    await a.announce_worker(WorkerInfo(name="w1", busy=0.5), ttl_s=30)
    await a.announce_worker(WorkerInfo(name="w2"), ttl_s=0.2)
    await b.announce_worker(WorkerInfo(name="w3"), ttl_s=30)
    assert [w.name for w in await b.workers()] == ["w1", "w2", "w3"]
    await b.worker_left("w3")
    deadline = time.monotonic() + 5
    while [w.name for w in await a.workers()] != ["w1"]:
        assert time.monotonic() < deadline, "w2 stayed"
        await asyncio.sleep(0.05)
    assert (await a.workers())[0].busy == 0.5


async def test_redis_down_is_a_clear_error_and_the_tail_comes_back(tmp_path: Path) -> None:
    server = redis_server(tmp_path / "redis")
    server.start()
    try:
        board = await RedisBoard.connect(redis_url(server), "restart")
        heard: list[BoardEvent] = []
        board.listen(heard.append)
        await board.publish(report("before"))
        await eventually_async(lambda: len(heard) == 1, "the first event")
        server.kill()
        started = time.monotonic()
        with pytest.raises(BoardUnavailable, match="unreachable"):
            await board.publish(report("while down"))
        assert time.monotonic() - started < 15
        server.start()  # the same port, the same append-only file
        await board.publish(report("after"))
        await eventually_async(lambda: len(heard) == 2, "an event after the restart")
        assert heard[-1].session == "after"  # type: ignore[union-attr]
        assert {e.session for e in await board.snapshot() if isinstance(e, SessionReport)} == {
            "before",
            "after",
        }
        await board.close()
    finally:
        server.stop()
