"""The WorkQueue conformance suite, written against the interface only.

Every implementation (in-process today, Redis next) subclasses `WorkQueueConformance` and
provides `make_queue`; the same tests must pass unchanged. Time is passed in, never slept.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

import pytest

from playhead.queue import InvalidTransition, Job, JobState, LeaseLost, WorkQueue

LEASE = 10.0


def job(job_id: str, priority: float = 1.0, **payload: Any) -> Job:
    return Job(job_id, {"segment": job_id, **payload}, priority)


class WorkQueueConformance(ABC):
    @abstractmethod
    def make_queue(self, max_attempts: int = 3) -> WorkQueue:
        """A fresh, empty queue of the implementation under test."""

    def test_claims_most_urgent_first_then_fifo(self) -> None:
        q = self.make_queue()
        for name, p in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0)]:
            q.submit(job(name, p), now=0)
        claimed = [q.claim("w", 0, LEASE) for _ in range(4)]
        assert [lease.job.id for lease in claimed if lease] == ["a", "b1", "b2", "c"]
        assert q.claim("w", 0, LEASE) is None

    def test_resubmit_is_idempotent_and_updates_priority(self) -> None:
        q = self.make_queue()
        q.submit(job("x", 5.0), 0)
        q.submit(job("y", 3.0), 0)
        q.submit(job("x", 1.0), 0)
        assert [j.id for j in q.pending()] == ["x", "y"]
        assert q.stats()["queued"] == 2

    def test_reprioritise_changes_claim_order(self) -> None:
        q = self.make_queue()
        q.submit(job("a", 1.0), 0)
        q.submit(job("b", 2.0), 0)
        assert q.reprioritise("b", 0.5)
        lease = q.claim("w", 0, LEASE)
        assert lease and lease.job.id == "b" and lease.job.priority == 0.5
        assert not q.reprioritise("b", 9.0)  # running: not waiting any more
        assert not q.reprioritise("nope", 1.0)

    def test_cancel_waiting_but_not_running(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        q.submit(job("b"), 0)
        assert q.cancel("a") and q.state("a") is JobState.CANCELLED
        lease = q.claim("w", 0, LEASE)
        assert lease and lease.job.id == "b"
        assert not q.cancel("b")  # running jobs finish and are cached
        q.complete(lease, 1, {"ok": True})
        assert q.state("b") is JobState.DONE and q.result("b") == {"ok": True}
        assert q.claim("w", 1, LEASE) is None

    def test_expired_lease_is_delivered_again_with_a_new_token(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        first = q.claim("w1", 0, LEASE)
        assert first is not None
        assert q.reap(now=LEASE / 2) == []
        assert q.reap(now=LEASE + 1) == ["a"]
        assert q.state("a") is JobState.QUEUED
        second = q.claim("w2", LEASE + 1, LEASE)
        assert second and second.job.id == "a" and second.token > first.token
        assert second.attempt == 2

    def test_stale_completion_is_fenced_off(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        old = q.claim("w1", 0, LEASE)
        assert old is not None
        q.reap(LEASE + 1)
        new = q.claim("w2", LEASE + 1, LEASE)
        assert new is not None
        with pytest.raises(LeaseLost):
            q.complete(old, LEASE + 2, {"by": "w1"})
        q.complete(new, LEASE + 3, {"by": "w2"})
        with pytest.raises(LeaseLost):
            q.complete(old, LEASE + 4, {"by": "w1"})
        assert q.result("a") == {"by": "w2"}

    def test_renew_extends_and_fails_after_reap(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        lease = q.claim("w", 0, LEASE)
        assert lease is not None
        lease = q.renew(lease, LEASE - 1, LEASE)
        assert lease.expires_at == 2 * LEASE - 1
        assert q.reap(LEASE + 1) == []  # renewed: still held
        q.reap(2 * LEASE)
        with pytest.raises(LeaseLost):
            q.renew(lease, 2 * LEASE, LEASE)

    def test_fail_retries_up_to_max_attempts(self) -> None:
        q = self.make_queue(max_attempts=2)
        q.submit(job("a"), 0)
        lease = q.claim("w", 0, LEASE)
        assert lease is not None
        q.fail(lease, 1, "flaky", retry=True)
        assert q.state("a") is JobState.QUEUED
        lease = q.claim("w", 1, LEASE)
        assert lease is not None
        q.fail(lease, 2, "flaky again", retry=True)
        assert q.state("a") is JobState.FAILED and q.error("a") == "flaky again"

    def test_fail_without_retry_is_final_but_can_be_resubmitted(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        lease = q.claim("w", 0, LEASE)
        assert lease is not None
        q.fail(lease, 1, "bad params", retry=False)
        assert q.state("a") is JobState.FAILED
        q.submit(job("a"), 2)
        assert q.state("a") is JobState.QUEUED and q.error("a") is None

    def test_dependencies_block_until_done(self) -> None:
        q = self.make_queue()
        q.submit(job("first"), 0)
        q.submit(Job("second", {}, 0.0, depends_on=("first",)), 0)
        assert q.state("second") is JobState.BLOCKED
        lease = q.claim("w", 0, LEASE)
        assert lease and lease.job.id == "first"  # second outranks it but is blocked
        q.complete(lease, 1, {})
        assert q.state("second") is JobState.QUEUED
        lease = q.claim("w", 1, LEASE)
        assert lease and lease.job.id == "second"

    def test_failed_or_cancelled_dependency_fails_the_dependant(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        q.submit(Job("b", {}, 0.0, depends_on=("a",)), 0)
        q.cancel("a")
        assert q.state("b") is JobState.FAILED and "a" in (q.error("b") or "")
        q.submit(Job("c", {}, 0.0, depends_on=("a",)), 1)
        assert q.state("c") is JobState.FAILED

    @pytest.mark.parametrize("payload", [{"s": {1, 2}}, {"b": b"bytes"}, {"n": float("nan")}])
    def test_payloads_must_be_json(self, payload: dict[str, Any]) -> None:
        with pytest.raises((TypeError, ValueError)):
            Job("x", payload, 1.0)

    def test_stats_count_every_state(self) -> None:
        q = self.make_queue()
        for name in "abc":
            q.submit(job(name), 0)
        lease = q.claim("w", 0, LEASE)
        q.cancel("c")
        stats = q.stats()
        assert lease is not None
        assert stats["queued"] == 1 and stats["running"] == 1 and stats["cancelled"] == 1
        assert set(stats) >= {s.value for s in JobState}

    def test_illegal_transitions_raise(self) -> None:
        from playhead.queue.base import check_transition

        with pytest.raises(InvalidTransition, match="expected"):
            check_transition("x", JobState.DONE, JobState.RUNNING)
        with pytest.raises(InvalidTransition, match="got running"):
            check_transition("x", JobState.CANCELLED, JobState.RUNNING)

    def test_each_job_is_claimed_exactly_once_under_contention(self) -> None:
        q = self.make_queue()
        for i in range(200):
            q.submit(job(f"j{i}", float(i % 7)), 0)
        claimed: list[str] = []
        lock = threading.Lock()

        def work(name: str) -> None:
            while (lease := q.claim(name, 0, LEASE)) is not None:
                q.complete(lease, 0, {})
                with lock:
                    claimed.append(lease.job.id)

        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(claimed) == sorted(f"j{i}" for i in range(200))
        assert q.stats()["done"] == 200

    def test_stale_renew_and_fail_are_fenced_off(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        old = q.claim("w1", 0, LEASE)
        assert old is not None
        q.reap(LEASE + 1)
        new = q.claim("w2", LEASE + 1, LEASE)
        assert new is not None
        with pytest.raises(LeaseLost):
            q.renew(old, LEASE + 1, LEASE)  # not expired by its own clock, but superseded
        with pytest.raises(LeaseLost):
            q.fail(old, LEASE + 1, "late", retry=False)
        assert q.state("a") is JobState.RUNNING and q.error("a") != "late"
        q.complete(new, LEASE + 2, {})
        assert q.state("a") is JobState.DONE

    def test_fencing_tokens_increase_across_the_whole_queue(self) -> None:
        q = self.make_queue()
        for name in "abc":
            q.submit(job(name), 0)
        tokens = [lease.token for lease in (q.claim("w", 0, LEASE) for _ in range(3)) if lease]
        assert len(tokens) == 3 and tokens == sorted(set(tokens))

    def test_reap_past_max_attempts_fails_the_job_and_its_dependants(self) -> None:
        q = self.make_queue(max_attempts=2)
        q.submit(job("a"), 0)
        q.submit(Job("b", {}, 1.0, depends_on=("a",)), 0)
        assert q.claim("w", 0, LEASE) is not None
        assert q.reap(LEASE + 1) == ["a"] and q.state("a") is JobState.QUEUED
        assert q.claim("w", LEASE + 1, LEASE) is not None
        assert q.reap(3 * LEASE) == ["a"]
        assert q.state("a") is JobState.FAILED and q.state("b") is JobState.FAILED

    def test_resubmitting_a_running_job_leaves_it_alone(self) -> None:
        q = self.make_queue()
        q.submit(job("a", 5.0), 0)
        lease = q.claim("w", 0, LEASE)
        assert lease is not None
        q.submit(job("a", 1.0), 1)
        assert q.state("a") is JobState.RUNNING and q.pending() == []
        q.complete(lease, 2, {"n": 1})
        assert q.state("a") is JobState.DONE and q.result("a") == {"n": 1}

    def test_resubmitting_a_finished_job_runs_it_again(self) -> None:
        """Done is not forever: the scheduler resubmits when the output was evicted."""
        q = self.make_queue()
        q.submit(job("a"), 0)
        lease = q.claim("w", 0, LEASE)
        assert lease is not None
        q.complete(lease, 1, {"n": 1})
        q.submit(job("a"), 2)
        assert q.state("a") is JobState.QUEUED and q.result("a") is None
        again = q.claim("w", 2, LEASE)
        assert again is not None and again.token > lease.token

    def test_a_job_waits_for_every_dependency(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        q.submit(job("b"), 0)
        q.submit(Job("c", {}, 0.0, depends_on=("a", "b")), 0)
        first = q.claim("w", 0, LEASE)
        assert first is not None and first.job.id == "a"
        q.complete(first, 1, {})
        assert q.state("c") is JobState.BLOCKED
        second = q.claim("w", 1, LEASE)
        assert second is not None and second.job.id == "b"
        q.complete(second, 2, {})
        third = q.claim("w", 2, LEASE)
        assert third is not None and third.job.id == "c"

    def test_a_dependency_submitted_later_still_releases_the_dependant(self) -> None:
        q = self.make_queue()
        q.submit(Job("b", {}, 0.0, depends_on=("a",)), 0)
        assert q.state("b") is JobState.BLOCKED and q.claim("w", 0, LEASE) is None
        q.submit(job("a"), 1)
        lease = q.claim("w", 1, LEASE)
        assert lease is not None and lease.job.id == "a"
        q.complete(lease, 2, {})
        assert q.state("b") is JobState.QUEUED

    def test_a_non_json_result_is_refused_and_the_lease_kept(self) -> None:
        q = self.make_queue()
        q.submit(job("a"), 0)
        lease = q.claim("w", 0, LEASE)
        assert lease is not None
        with pytest.raises((TypeError, ValueError)):
            q.complete(lease, 1, {"s": {1, 2}})
        assert q.state("a") is JobState.RUNNING
        q.complete(lease, 1, {"s": [1, 2]})
        assert q.result("a") == {"s": [1, 2]}

    def test_the_queue_keeps_its_own_json_copy_of_the_payload(self) -> None:
        payload: dict[str, Any] = {"frames": [0, 1], "range": (0, 30)}
        q = self.make_queue()
        q.submit(Job("a", payload, 1.0), 0)
        payload["frames"].append(2)
        lease = q.claim("w", 0, LEASE)
        assert lease is not None and lease.job.payload == {"frames": [0, 1], "range": [0, 30]}

    @pytest.mark.parametrize(
        ("priority", "depends_on"), [(float("nan"), ()), (1.0, ("x",))], ids=["nan", "self"]
    )
    def test_unclaimable_jobs_are_refused(self, priority: float, depends_on: tuple[str]) -> None:
        with pytest.raises(ValueError):
            Job("x", {}, priority, depends_on)

    def test_claim_can_be_limited_to_urgent_work(self) -> None:
        q = self.make_queue()
        q.submit(job("far", 50.0), 0)
        assert q.claim("w", 0, LEASE, max_priority=10.0) is None
        assert q.state("far") is JobState.QUEUED  # left for a worker without the limit
        q.submit(job("near", 5.0), 0)
        lease = q.claim("w", 0, LEASE, max_priority=10.0)
        assert lease and lease.job.id == "near"
        lease = q.claim("w2", 0, LEASE)
        assert lease and lease.job.id == "far"
