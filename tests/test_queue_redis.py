"""The Redis queue (BullMQ) passes the conformance suite against a real redis-server, and keeps
its promises across priority re-bases, a kill -9 of Redis, and several clients on one queue."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from queue_conformance import LONG, WorkQueueConformance, job
from waiting import eventually_async

from playhead.cluster.process import Service, free_port
from playhead.cluster.redis_server import redis_server, redis_url
from playhead.queue import Change, Job, JobState, QueueUnavailable, WorkQueue
from playhead.queue.redis import RedisQueue
from playhead.queue.redis_priority import CLASS_SPAN, Epoch, PriorityMap

pytestmark = pytest.mark.anyio

BACKOFF_S = 0.05  # retry backoff: the conformance suite waits for it by polling
STALLED_S = 0.1  # stalled-check interval: a lapsed lease comes back 0.1–0.2 s after it lapsed
PREFIX = "playhead"


@pytest.fixture(scope="module")
def redis_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = redis_server(tmp_path_factory.mktemp("redis"))
    service.start()
    yield service
    service.stop()


@pytest.fixture
def url(redis_service: Service) -> str:
    return redis_url(redis_service)


@pytest.fixture
async def raw(url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client, to look at BullMQ's keys directly."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    yield client
    await client.aclose()


async def connect(url: str, name: str | None = None, **options: Any) -> RedisQueue:
    options = {"retry_backoff_s": BACKOFF_S, "stalled_interval_s": STALLED_S, **options}
    return await RedisQueue.connect(url, name or f"test-{uuid.uuid4().hex[:12]}", **options)


async def until_due(url: str, q: RedisQueue) -> None:
    """Wait (polling, with a deadline) until every job backing off in ``q`` is due."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        scores: Any = await client.zrange(f"{PREFIX}:{q.name}:delayed", 0, -1, withscores=True)
        due_s = max((score / 0x1000 + 1) / 1000 for _, score in scores) if scores else 0.0
    finally:
        await client.aclose()
    deadline = time.monotonic() + 10
    while time.time() < due_s:
        assert time.monotonic() < deadline, "a backoff did not pass within 10 s"
        await asyncio.sleep(0.01)


class TestRedisQueue(WorkQueueConformance):
    url = ""

    @pytest.fixture(autouse=True)
    def _server(self, url: str) -> None:
        self.url = url

    async def new_queue(self, max_attempts: int) -> WorkQueue:
        return await connect(self.url, max_attempts=max_attempts)

    async def lapse(self, q: WorkQueue) -> list[str]:
        """Leases expire in Redis time: reap until the stalled check returns something."""
        reaped: list[str] = []

        async def some() -> bool:
            reaped.extend(await q.reap())
            return bool(reaped)

        await eventually_async(some, "a lease to lapse")
        return reaped

    async def let_backoff_pass(self, q: WorkQueue) -> None:
        assert isinstance(q, RedisQueue)
        await until_due(self.url, q)


# ---- the priority packing ---------------------------------------------------------------------


def test_the_packing_never_inverts_an_order_and_separates_keys_a_bucket_apart() -> None:
    rng = random.Random(7)
    packing = PriorityMap()
    now = 1.7e9
    epoch = Epoch.first(now, now)
    priorities = sorted(
        klass * CLASS_SPAN + now + rng.uniform(-7200, 7200)
        for klass in range(4)
        for _ in range(2000)
    )
    encoded = [packing.encode(p, epoch) for p in priorities]
    assert encoded == sorted(encoded)
    assert encoded[0] >= 1 and encoded[-1] <= 2**21
    for a, b, ea, eb in zip(priorities, priorities[1:], encoded, encoded[1:], strict=False):
        inside = abs(packing.split(a)[1] - now) < 1300 and abs(packing.split(b)[1] - now) < 1300
        if inside and b - a >= 0.02:
            assert eb > ea, (a, b)
    # the ends: out of range classes and infinities clamp, never raise
    assert packing.encode(-math.inf, epoch) == 1
    assert packing.encode(-5.0, epoch) == 1
    assert packing.encode(math.inf, epoch) == 2**21
    assert packing.encode(9e10, epoch) == 2**21


def test_an_epoch_starts_at_now_for_unix_time_keys_and_at_the_key_otherwise() -> None:
    assert Epoch.first(1.7e9 + 30, 1.7e9).key == 1.7e9
    assert Epoch.first(3.0, 1.7e9).key == 3.0
    rolled = Epoch.first(3.0, 1.7e9).rolled(1.7e9 + 60)
    assert (rolled.key, rolled.at, rolled.gen) == (63.0, 1.7e9 + 60, 2)
    assert Epoch.load(rolled.dump()) == rolled


async def test_a_rebase_keeps_the_claim_order(url: str, raw: aioredis.Redis) -> None:
    """A small window (10.24 s) and a re-base after 0.2 s: jobs queued before and after the
    epoch moves still come out in exact priority order, also one released by a client whose
    cached epoch predates the re-base."""
    small: dict[str, Any] = {"buckets_per_class": 2**10, "rebase_after_s": 0.2}
    q1 = await connect(url, **small)
    q2 = await connect(url, q1.name, **small)
    try:
        t0 = time.time()
        expected: list[tuple[float, str]] = []

        async def submit(q: RedisQueue, name: str, klass: int, offset: float) -> None:
            priority = klass * CLASS_SPAN + t0 + offset
            await q.submit(job(name, priority))
            expected.append((priority, name))

        await submit(q1, "held", 1, 0.12)  # claimed now, released after the re-base
        held = await q1.claim("w", LONG)
        assert held is not None and held.job.id == "held"
        for i, offset in enumerate([0.0, 0.1, 0.2, 0.3, 0.4]):
            await submit(q1, f"old{i}", 1, offset)
        await submit(q1, "old-export", 3, 0.0)
        epoch_before = Epoch.load(str(await raw.get(f"{PREFIX}:{q1.name}:ph:epoch")))
        before = await raw.hget(f"{PREFIX}:{q1.name}:old0", "priority")
        await asyncio.sleep(0.3)  # the epoch ages past rebase_after_s
        for i, offset in enumerate([0.05, 0.15, 0.25, 0.35]):
            await submit(q2, f"new{i}", 1, offset)  # the first of these re-bases
        await submit(q2, "new-urgent", 0, 5.0)
        epoch_after = Epoch.load(str(await raw.get(f"{PREFIX}:{q1.name}:ph:epoch")))
        assert epoch_after.gen > epoch_before.gen and epoch_after.key > epoch_before.key
        assert await raw.hget(f"{PREFIX}:{q1.name}:old0", "priority") != before  # re-encoded
        await q1.release(held)  # encoded with q1's cached epoch, then put right
        order = [n for _, n in sorted(expected)]
        assert [j.id for j in await q1.pending()] == order
        claimed = []
        while (lease := await q2.claim("w", LONG)) is not None:
            claimed.append(lease.job.id)
            assert lease.job.priority == dict((n, p) for p, n in expected)[lease.job.id]
        assert claimed == order
    finally:
        await q1.close()
        await q2.close()


async def test_keys_past_the_window_keep_their_class_and_come_in_submission_order(
    url: str,
) -> None:
    q = await connect(url, buckets_per_class=2**10)  # a window from -2.56 s to +7.68 s
    try:
        t0 = time.time()
        submitted = [("near", 1, 0.0), ("far-b", 1, 60.0), ("far-a", 1, 30.0), ("urgent", 0, 90.0)]
        for name, klass, offset in submitted:
            await q.submit(job(name, klass * CLASS_SPAN + t0 + offset))
        claimed = [lease.job.id for lease in [await q.claim("w", LONG) for _ in range(4)] if lease]
        assert claimed == ["urgent", "near", "far-b", "far-a"]
    finally:
        await q.close()


# ---- several clients, one queue ---------------------------------------------------------------


async def test_two_clients_see_each_others_changes_and_claim_disjoint_jobs(url: str) -> None:
    q1 = await connect(url)
    q2 = await connect(url, q1.name)
    seen1: list[Change] = []
    seen2: list[Change] = []
    q1.watch(seen1.append)
    q2.watch(seen2.append)
    try:
        for i in range(40):
            await (q1 if i % 2 else q2).submit(job(f"j{i}", float(i % 5)))
        claimed: dict[str, list[str]] = {"q1": [], "q2": []}

        async def work(name: str, q: RedisQueue) -> None:
            while (lease := await q.claim(name, LONG)) is not None:
                await asyncio.sleep(0)
                await q.complete(lease, {"by": name})
                claimed[name].append(lease.job.id)

        await asyncio.gather(work("q1", q1), work("q2", q2), work("q1", q1), work("q2", q2))
        assert not set(claimed["q1"]) & set(claimed["q2"])
        assert sorted(claimed["q1"] + claimed["q2"]) == sorted(f"j{i}" for i in range(40))
        assert claimed["q1"] and claimed["q2"]

        for seen in (seen1, seen2):

            async def all_done(seen: list[Change] = seen) -> bool:
                return sum(c.state is JobState.DONE for c in seen) == 40

            await eventually_async(all_done, "every completion, on both clients")
            by = {c.job_id: (c.result or {}).get("by") for c in seen if c.state is JobState.DONE}
            assert {j for j, b in by.items() if b == "q2"} == set(claimed["q2"])
            for i in range(40):  # each job's changes in order
                states = [c.state for c in seen if c.job_id == f"j{i}"]
                assert states == [JobState.QUEUED, JobState.RUNNING, JobState.DONE]
    finally:
        await q1.close()
        await q2.close()


async def test_a_listener_that_raises_does_not_stop_the_others(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    q = await connect(url)
    seen: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    q.watch(broken)
    q.watch(seen.append)
    try:
        with caplog.at_level(logging.ERROR, logger="playhead.queue.redis"):
            await q.submit(job("a"))
            await q.submit(job("b"))

            async def both() -> bool:
                return [c.job_id for c in seen] == ["a", "b"]

            await eventually_async(both, "both changes despite the broken listener")
        assert "listener failed" in caplog.text
    finally:
        await q.close()


async def test_idle_workers_wait_side_by_side_and_stop_at_once_when_cancelled(url: str) -> None:
    q = await connect(url)
    try:
        waiters = [asyncio.create_task(q.wait_for_work(30)) for _ in range(3)]
        await asyncio.sleep(0.1)  # let them block (each on a connection of its own)
        started = time.monotonic()
        await q.submit(job("a"))
        done, waiting = await asyncio.wait(waiters, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        assert done and time.monotonic() - started < 2
        for waiter in waiting:  # what a stopping worker does
            waiter.cancel()
        started = time.monotonic()
        await asyncio.wait(waiters, timeout=5)
        assert all(w.done() for w in waiters) and time.monotonic() - started < 1
    finally:
        await q.close()


async def test_a_retried_job_wakes_an_idle_worker_when_its_backoff_ends(url: str) -> None:
    q = await connect(url, retry_backoff_s=0.3)
    try:
        await q.submit(job("a"))
        lease = await q.claim("w", LONG)
        assert lease is not None
        await q.fail(lease, "flaky", retry=True)
        failed_at = time.monotonic()
        assert await q.claim("w", LONG) is None  # backing off
        while (again := await q.claim("w", LONG)) is None:
            await q.wait_for_work(10)
            assert time.monotonic() - failed_at < 5, "the retry never became claimable"
        assert again.attempt == 2 and time.monotonic() - failed_at >= 0.25
        assert await q.error("a") == "flaky"
    finally:
        await q.close()


async def test_a_claim_that_gets_a_job_over_its_limit_gives_it_back(url: str) -> None:
    """The peek before a limited claim does not see a retry falling due (moveToActive
    promotes it and hands it out): the claim gives it back, unharmed."""
    q = await connect(url)
    try:
        await q.submit(job("far", 50.0))
        lease = await q.claim("w", LONG)
        assert lease is not None
        await q.fail(lease, "flaky", retry=True)
        await until_due(url, q)
        assert await q.claim("w", LONG, max_priority=10.0) is None
        assert await q.state("far") is JobState.QUEUED
        again = await q.claim("w", LONG)
        assert again is not None and again.job.id == "far" and again.attempt == 2
    finally:
        await q.close()


# ---- Redis down and back ----------------------------------------------------------------------


async def test_redis_killed_and_restarted_keeps_jobs_and_the_tail_resumes(
    redis_service: Service, url: str
) -> None:
    q = await connect(url, timeout_s=1.0)
    seen: list[Change] = []
    q.watch(seen.append)
    try:
        for name, p in [("a", 1.0), ("b", 2.0), ("c", 3.0)]:
            await q.submit(job(name, p))
        held = await q.claim("w", LONG)
        assert held is not None and held.job.id == "a"
        redis_service.kill()  # kill -9: whatever was acknowledged is in the AOF
        try:
            calls = {
                "submit": q.submit(job("d")),
                "claim": q.claim("w", LONG),
                "renew": q.renew(held, LONG),
                "complete": q.complete(held, {}),
                "state": q.state("b"),
                "stats": q.stats(),
                "pending": q.pending(),
                "reap": q.reap(),
                "wait_for_work": q.wait_for_work(5),
            }
            for what, call in calls.items():
                started = time.monotonic()
                with pytest.raises(QueueUnavailable, match="unreachable") as raised:
                    await call
                assert time.monotonic() - started < 3, f"{what} took too long to give up"
                assert raised.value.status == 503 and "127.0.0.1" in raised.value.message
        finally:
            redis_service.start()  # same port, same data directory
        assert [j.id for j in await q.pending()] == ["b", "c"]
        assert await q.state("a") is JobState.RUNNING
        await q.complete(await q.renew(held, LONG), {"after": "restart"})
        lease = await q.claim("w", LONG)
        assert lease is not None and lease.job.id == "b"

        async def resumed() -> bool:
            return ("b", JobState.RUNNING) in [(c.job_id, c.state) for c in seen]

        await eventually_async(resumed, "the tail to deliver changes made after the restart")
        done = [c for c in seen if c.job_id == "a" and c.state is JobState.DONE]
        assert done and done[0].result == {"after": "restart"}
    finally:
        await q.close()


async def test_an_unreachable_url_is_named_without_its_password() -> None:
    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(QueueUnavailable) as raised:
        await RedisQueue.connect(url, "x", timeout_s=1.0)
    assert time.monotonic() - started < 3
    assert "s3cret" not in raised.value.message and "127.0.0.1" in raised.value.message


# ---- numbers ----------------------------------------------------------------------------------


async def test_measured_latencies(url: str) -> None:
    """Printed (run with -s), not asserted: loopback Redis, one client."""
    q = await connect(url)
    try:
        n = 200
        submit_s, claim_s, renew_s, complete_s = [], [], [], []
        for i in range(n):
            started = time.perf_counter()
            await q.submit(Job(f"j{i}", {"segment": i}, 1e10 + time.time() + i * 0.02))
            submit_s.append(time.perf_counter() - started)
        for _ in range(n):
            started = time.perf_counter()
            lease = await q.claim("w", LONG)
            claim_s.append(time.perf_counter() - started)
            assert lease is not None
            started = time.perf_counter()
            lease = await q.renew(lease, LONG)
            renew_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            await q.complete(lease, {})
            complete_s.append(time.perf_counter() - started)
        await q.submit(job("stall"))
        lease = await q.claim("w", 0.5)
        assert lease is not None
        lapsed_at = time.monotonic() + 0.5

        async def back() -> bool:
            return bool(await q.reap())

        await eventually_async(back, "the stalled job back in the queue")
        back_after = time.monotonic() - lapsed_at

        def ms(samples: list[float]) -> str:
            q50 = statistics.median(samples) * 1000
            q99 = sorted(samples)[int(len(samples) * 0.99) - 1] * 1000
            return f"median {q50:.2f} ms, p99 {q99:.2f} ms"

        print(f"\nRedisQueue on loopback Redis, {n} jobs:")
        print(f"  submit   {ms(submit_s)}")
        print(f"  claim    {ms(claim_s)}")
        print(f"  renew    {ms(renew_s)}")
        print(f"  complete {ms(complete_s)}")
        print(
            f"  a 0.5 s lease came back {back_after * 1000:.0f} ms after it lapsed "
            f"(stalled check every {STALLED_S * 1000:.0f} ms)"
        )
    finally:
        await q.close()
