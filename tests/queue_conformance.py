"""The WorkQueue conformance suite, written against the interface only.

Every implementation (in-process, Redis) subclasses `WorkQueueConformance` and provides a
fresh queue, and says how time passes for it: the in-process queue reads a fake clock that the
suite moves; the Redis queue keeps time on the Redis server, so its leases are short and the
suite waits (polling, with a deadline) for them to lapse. The same tests pass unchanged.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from waiting import eventually_async

from playhead.queue import Change, InvalidTransition, Job, JobState, LeaseLost, WorkQueue

pytestmark = pytest.mark.anyio

LONG = 60.0  # a lease that never lapses during a test


def job(job_id: str, priority: float = 1.0, **payload: Any) -> Job:
    return Job(job_id, {"segment": job_id, **payload}, priority)


class WorkQueueConformance(ABC):
    short: float = 0.5  # a lease a test lets lapse

    @abstractmethod
    async def new_queue(self, max_attempts: int) -> WorkQueue:
        """A fresh, empty queue of the implementation under test (retry backoff: short)."""

    @abstractmethod
    async def lapse(self, q: WorkQueue) -> list[str]:
        """Let every lease of ``short`` seconds expire, then reap: the reaped job ids."""

    @abstractmethod
    async def let_backoff_pass(self, q: WorkQueue) -> None:
        """Move past the backoff of every job queued again after a failed attempt."""

    @pytest.fixture
    async def make(self) -> AsyncIterator[Callable[..., Awaitable[WorkQueue]]]:
        made: list[WorkQueue] = []

        async def make(max_attempts: int = 3) -> WorkQueue:
            q = await self.new_queue(max_attempts)
            made.append(q)
            return q

        yield make
        for q in made:
            await q.close()

    async def test_claims_most_urgent_first_then_fifo(self, make: Any) -> None:
        q = await make()
        for name, p in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0)]:
            await q.submit(job(name, p))
        claimed = [await q.claim("w", LONG) for _ in range(4)]
        assert [lease.job.id for lease in claimed if lease] == ["a", "b1", "b2", "c"]
        assert await q.claim("w", LONG) is None

    async def test_resubmit_is_idempotent_and_updates_priority(self, make: Any) -> None:
        q = await make()
        await q.submit(job("x", 5.0))
        await q.submit(job("y", 3.0))
        await q.submit(job("x", 1.0))
        assert [j.id for j in await q.pending()] == ["x", "y"]
        assert [j.priority for j in await q.pending()] == [1.0, 3.0]
        assert (await q.stats())["queued"] == 2

    async def test_priorities_keep_their_order_at_any_scale(self, make: Any) -> None:
        """Priorities are class * 1e10 + a time in seconds: keys 20 ms apart keep their order."""
        q = await make()
        now = time.time()
        expected = []
        for klass in (3, 1, 0, 2):
            for offset in (25.0, 0.02, -3.0, 0.0):
                name = f"{klass}:{offset}"
                await q.submit(job(name, klass * 1e10 + now + offset))
                expected.append((klass * 1e10 + now + offset, name))
        order = [(await q.claim("w", LONG)) for _ in expected]
        assert [lease.job.id for lease in order if lease] == [n for _, n in sorted(expected)]

    async def test_reprioritise_changes_claim_order(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a", 1.0))
        await q.submit(job("b", 2.0))
        assert await q.reprioritise("b", 0.5)
        lease = await q.claim("w", LONG)
        assert lease and lease.job.id == "b" and lease.job.priority == 0.5
        assert not await q.reprioritise("b", 9.0)  # running: not waiting any more
        assert not await q.reprioritise("nope", 1.0)

    async def test_cancel_waiting_but_not_running(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a"))
        await q.submit(job("b"))
        assert await q.cancel("a") and await q.state("a") is None
        lease = await q.claim("w", LONG)
        assert lease and lease.job.id == "b"
        assert not await q.cancel("b")  # running jobs finish and are cached
        await q.complete(lease, {"ok": True})
        assert await q.state("b") is JobState.DONE and await q.result("b") == {"ok": True}
        assert not await q.cancel("b")
        assert await q.claim("w", LONG) is None

    async def test_expired_lease_is_delivered_again_with_a_new_token(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a"))
        first = await q.claim("w1", self.short)
        assert first is not None
        assert await q.reap() == []
        assert await self.lapse(q) == ["a"]
        assert await q.state("a") is JobState.QUEUED
        second = await q.claim("w2", LONG)
        assert second and second.job.id == "a" and second.token > first.token
        assert second.attempt == 2

    async def test_stale_completion_is_fenced_off(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a"))
        old = await q.claim("w1", self.short)
        assert old is not None
        await self.lapse(q)
        new = await q.claim("w2", LONG)
        assert new is not None
        with pytest.raises(LeaseLost):
            await q.complete(old, {"by": "w1"})
        await q.complete(new, {"by": "w2"})
        with pytest.raises(LeaseLost):
            await q.complete(old, {"by": "w1"})
        assert await q.result("a") == {"by": "w2"}

    async def test_renew_extends_and_fails_after_reap(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a"))
        lease = await q.claim("w", self.short)
        assert lease is not None
        renewed = await q.renew(lease, LONG)
        assert renewed.expires_at > lease.expires_at and renewed.token == lease.token
        assert await q.reap() == []  # renewed: still held
        short = await q.renew(renewed, self.short)
        assert await self.lapse(q) == ["a"]
        with pytest.raises(LeaseLost):
            await q.renew(short, LONG)

    async def test_fail_retries_after_a_backoff_up_to_max_attempts(self, make: Any) -> None:
        q = await make(max_attempts=2)
        await q.submit(job("a"))
        lease = await q.claim("w", LONG)
        assert lease is not None
        await q.fail(lease, "flaky", retry=True)
        assert await q.state("a") is JobState.QUEUED
        await self.let_backoff_pass(q)
        lease = await q.claim("w", LONG)
        assert lease is not None and lease.attempt == 2
        await q.fail(lease, "flaky again", retry=True)
        assert await q.state("a") is JobState.FAILED and await q.error("a") == "flaky again"

    async def test_fail_without_retry_is_final_but_can_be_resubmitted(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a"))
        lease = await q.claim("w", LONG)
        assert lease is not None
        await q.fail(lease, "bad params", retry=False)
        assert await q.state("a") is JobState.FAILED
        await q.submit(job("a"))
        assert await q.state("a") is JobState.QUEUED
        again = await q.claim("w", LONG)
        assert again is not None and again.attempt == 1

    @pytest.mark.parametrize("payload", [{"s": {1, 2}}, {"b": b"bytes"}, {"n": float("nan")}])
    def test_payloads_must_be_json(self, payload: dict[str, Any]) -> None:
        with pytest.raises((TypeError, ValueError)):
            Job("x", payload, 1.0)

    async def test_stats_count_every_kept_state(self, make: Any) -> None:
        q = await make()
        for name in "abcd":
            await q.submit(job(name))
        running = await q.claim("w", LONG)
        done = await q.claim("w", LONG)
        assert running is not None and done is not None
        await q.complete(done, {})
        await q.cancel("d")
        stats = await q.stats()
        assert (stats["queued"], stats["running"], stats["done"]) == (1, 1, 1)
        assert set(stats) >= {"queued", "running", "done", "failed"}

    def test_illegal_transitions_raise(self) -> None:
        from playhead.queue.base import check_transition

        with pytest.raises(InvalidTransition, match="expected"):
            check_transition("x", JobState.DONE, JobState.RUNNING)
        with pytest.raises(InvalidTransition, match="got running"):
            check_transition("x", JobState.CANCELLED, JobState.RUNNING)

    async def test_each_job_is_claimed_exactly_once_under_contention(self, make: Any) -> None:
        q = await make()
        for i in range(100):
            await q.submit(job(f"j{i}", float(i % 7)))
        claimed: list[str] = []

        async def work(name: str) -> None:
            while (lease := await q.claim(name, LONG)) is not None:
                await asyncio.sleep(0)  # let the other workers in between claim and complete
                await q.complete(lease, {})
                claimed.append(lease.job.id)

        await asyncio.gather(*(work(f"w{i}") for i in range(4)))
        assert sorted(claimed) == sorted(f"j{i}" for i in range(100))
        assert (await q.stats())["done"] == 100

    async def test_stale_renew_fail_and_release_are_fenced_off(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a"))
        old = await q.claim("w1", self.short)
        assert old is not None
        await self.lapse(q)
        new = await q.claim("w2", LONG)
        assert new is not None
        with pytest.raises(LeaseLost):
            await q.renew(old, LONG)  # superseded
        with pytest.raises(LeaseLost):
            await q.fail(old, "late", retry=False)
        with pytest.raises(LeaseLost):
            await q.release(old)
        assert await q.state("a") is JobState.RUNNING and await q.error("a") != "late"
        await q.complete(new, {})
        assert await q.state("a") is JobState.DONE

    async def test_fencing_tokens_increase_across_the_whole_queue(self, make: Any) -> None:
        q = await make()
        for name in "abc":
            await q.submit(job(name))
        leases = [await q.claim("w", LONG) for _ in range(3)]
        tokens = [lease.token for lease in leases if lease]
        assert len(tokens) == 3 and tokens == sorted(set(tokens))

    async def test_a_job_that_keeps_expiring_fails_for_good(self, make: Any) -> None:
        q = await make(max_attempts=2)
        await q.submit(job("a"))
        assert await q.claim("w", self.short) is not None
        assert await self.lapse(q) == ["a"] and await q.state("a") is JobState.QUEUED
        assert await q.claim("w", self.short) is not None
        assert await self.lapse(q) == ["a"]
        assert await q.claim("w", LONG) is None  # never handed out again
        assert await q.state("a") is JobState.FAILED

    async def test_resubmitting_a_running_job_leaves_it_alone(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a", 5.0))
        lease = await q.claim("w", LONG)
        assert lease is not None
        await q.submit(job("a", 1.0))
        assert await q.state("a") is JobState.RUNNING and await q.pending() == []
        await q.complete(lease, {"n": 1})
        assert await q.state("a") is JobState.DONE and await q.result("a") == {"n": 1}

    async def test_resubmitting_a_finished_job_runs_it_again(self, make: Any) -> None:
        """Done is not forever: the planner resubmits when the output was evicted."""
        q = await make()
        await q.submit(job("a"))
        lease = await q.claim("w", LONG)
        assert lease is not None
        await q.complete(lease, {"n": 1})
        await q.submit(job("a"))
        assert await q.state("a") is JobState.QUEUED and await q.result("a") is None
        again = await q.claim("w", LONG)
        assert again is not None and again.token > lease.token

    async def test_a_non_json_result_is_refused_and_the_lease_kept(self, make: Any) -> None:
        q = await make()
        await q.submit(job("a"))
        lease = await q.claim("w", LONG)
        assert lease is not None
        with pytest.raises((TypeError, ValueError)):
            await q.complete(lease, {"s": {1, 2}})
        assert await q.state("a") is JobState.RUNNING
        await q.complete(lease, {"s": [1, 2]})
        assert await q.result("a") == {"s": [1, 2]}

    async def test_the_queue_keeps_its_own_json_copy_of_the_payload(self, make: Any) -> None:
        payload: dict[str, Any] = {"frames": [0, 1], "range": (0, 30)}
        q = await make()
        await q.submit(Job("a", payload, 1.0))
        payload["frames"].append(2)
        lease = await q.claim("w", LONG)
        assert lease is not None and lease.job.payload == {"frames": [0, 1], "range": [0, 30]}

    @pytest.mark.parametrize("job_id", ["", "a b", "tab\there"])
    def test_unusable_ids_and_priorities_are_refused(self, job_id: str) -> None:
        with pytest.raises(ValueError):
            Job(job_id, {}, 1.0)
        with pytest.raises(ValueError):
            Job("x", {}, float("nan"))

    async def test_claim_can_be_limited_to_urgent_work(self, make: Any) -> None:
        q = await make()
        await q.submit(job("far", 50.0))
        assert await q.claim("w", LONG, max_priority=10.0) is None
        assert await q.state("far") is JobState.QUEUED  # left for a worker without the limit
        await q.submit(job("near", 5.0))
        lease = await q.claim("w", LONG, max_priority=10.0)
        assert lease and lease.job.id == "near"
        lease = await q.claim("w2", LONG)
        assert lease and lease.job.id == "far"

    async def test_interrupt_reaches_the_holder_and_release_gives_the_job_back(
        self, make: Any
    ) -> None:
        q = await make()
        await q.submit(job("a", 2.0))
        await q.submit(job("b", 2.0))
        assert not await q.interrupt("a")  # not running
        lease = await q.claim("w", LONG)
        assert lease is not None and lease.job.id == "a"
        assert not (await q.renew(lease, LONG)).interrupted
        assert await q.interrupt("a")
        renewed = await q.renew(lease, LONG)
        assert renewed.interrupted
        await q.release(renewed)
        assert await q.state("a") is JobState.QUEUED
        again = await q.claim("w", LONG)  # ahead of "b", which has the same priority
        assert again is not None and again.job.id == "a" and not again.interrupted
        assert not (await q.renew(again, LONG)).interrupted

    async def test_pending_and_running_list_what_is_waiting_and_held(self, make: Any) -> None:
        q = await make()
        for name, p in [("b", 2.0), ("a", 1.0), ("c", 3.0)]:
            await q.submit(job(name, p))
        lease = await q.claim("w", LONG)
        assert lease is not None
        assert [j.id for j in await q.pending()] == ["b", "c"]
        assert await q.running() == ["a"]

    async def test_watch_tells_every_change_in_order(self, make: Any) -> None:
        q = await make()
        seen: list[Change] = []
        stop = q.watch(seen.append)
        await q.submit(job("a"))
        lease = await q.claim("w", LONG)
        assert lease is not None
        await q.complete(lease, {"frames": 3})
        await q.submit(job("b"))
        await q.cancel("b")
        await q.submit(job("c"))
        failing = await q.claim("w", LONG)
        assert failing is not None
        await q.fail(failing, "broken", retry=False)

        async def told_all() -> bool:
            return len(seen) >= 8

        await eventually_async(told_all, "eight changes")
        stop()
        assert [(c.job_id, c.state) for c in seen] == [
            ("a", JobState.QUEUED),
            ("a", JobState.RUNNING),
            ("a", JobState.DONE),
            ("b", JobState.QUEUED),
            ("b", JobState.CANCELLED),
            ("c", JobState.QUEUED),
            ("c", JobState.RUNNING),
            ("c", JobState.FAILED),
        ]
        assert seen[2].result == {"frames": 3}
        failed = [c for c in seen if c.state is JobState.FAILED]
        assert failed and failed[0].error == "broken"
        assert all(c.at > 0 for c in seen)

    async def test_a_stopped_watch_hears_nothing_more(self, make: Any) -> None:
        q = await make()
        seen: list[Change] = []
        stop = q.watch(seen.append)
        await q.submit(job("a"))

        async def told() -> bool:
            return len(seen) >= 1

        await eventually_async(told, "the first change")
        stop()
        marker: list[Change] = []
        q.watch(marker.append)
        await q.submit(job("b"))

        async def marker_told() -> bool:
            return any(c.job_id == "b" for c in marker)

        await eventually_async(marker_told, "a second listener to hear b")
        assert [c.job_id for c in seen] == ["a"]

    async def test_an_idle_worker_wakes_when_work_arrives(self, make: Any) -> None:
        q = await make()
        waiter = asyncio.create_task(q.wait_for_work(30))
        await asyncio.sleep(0)  # let it start waiting (if it has not, the submit is seen anyway)
        started = time.monotonic()
        await q.submit(job("a"))
        await asyncio.wait_for(waiter, 10)
        assert time.monotonic() - started < 5  # woken by the submit, not by its 30 s timeout
        assert await q.claim("w", LONG) is not None
