"""The Redis WorkQueue: BullMQ's job states and Lua scripts, shared by API replicas and workers.

Every job state change is one of BullMQ's own scripts (the ones `bullmq.Queue` and
`bullmq.Worker` run): ``addPrioritizedJob``, ``moveToActive``, ``extendLock``,
``moveToFinished``, ``moveToDelayed``, ``moveJobFromActiveToWait``, ``changePriority``,
``removeJob``, ``moveStalledJobsToWait``. What BullMQ has no notion of is plain Redis around
them, never hand-written Lua:

- fencing tokens: an ``INCR`` counter, passed to ``moveToActive`` as the lock's value;
- the exact float priority (``pf`` in the job's hash) and the shared epoch that maps it onto
  BullMQ's integer priority (`redis_priority`), re-based atomically with ``WATCH``/``MULTI``;
- interrupts: a key per job holding the token of the claim it is meant for;
- check-then-act operations (submit, cancel, reprioritise) as optimistic transactions
  (``WATCH`` the job's hash, read its state, then ``MULTI`` the BullMQ scripts), so a claim
  racing them makes them retry instead of acting on a stale state.

Listeners learn about changes by tailing BullMQ's ``events`` stream (``XREAD BLOCK``) from a
background task, so every replica hears what any process did. See docs/queue.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import bullmq
import redis.asyncio as aioredis
from bullmq.redis_connection import loadScript
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from playhead.queue.base import (
    Change,
    Job,
    JobState,
    Lease,
    LeaseLost,
    Listener,
    QueueUnavailable,
    json_copy,
)
from playhead.queue.redis_priority import Epoch, PriorityMap
from playhead.redis_client import client, shown

log = logging.getLogger(__name__)

T = TypeVar("T")

# BullMQ's state names (getStateV2) → ours; "unknown" is a job the queue does not know
_WAITING = frozenset({"prioritized", "waiting", "delayed", "paused", "waiting-children"})
_STATES = {
    **dict.fromkeys(_WAITING, JobState.QUEUED),
    "active": JobState.RUNNING,
    "completed": JobState.DONE,
    "failed": JobState.FAILED,
}
# the "prev" of a "removed" event that makes it a cancel (else: a finished job run again)
_REMOVED_WHILE_WAITING = frozenset({"prioritized", "wait", "waiting", "delayed", "paused"})
# moveToFinished / moveToDelayed / moveJobFromActiveToWait error codes
_LOST = {
    -1: "the job is gone",
    -2: "its lock expired",
    -3: "it is not running",
    -6: "another claim holds it",
}

LEASE_EXPIRED = "lease expired"
BLOCK_S = 5.0  # longest single BZPOPMIN (a wait_for_work loops over them)
TAIL_BLOCK_MS = 1000
INTERRUPT_TTL_MS = 3_600_000  # an interrupt outlives any plausible wait for the next renew
REBASE_LOCK_MS = 5_000
MAX_TRANSACTION_TRIES = 100
JOB_NAME = "job"


def _multi(pipe: Pipeline) -> None:
    """Switch a watching pipeline to buffering its MULTI (redis-py leaves it unannotated)."""
    pipe.multi()  # type: ignore[no-untyped-call]


def _text(value: Any) -> str | None:
    """A reply of a client made with decode_responses (typed bytes | str by redis-py)."""
    return None if value is None else str(value)


class _Again(Exception):
    """A transaction's body changed what it watches (or saw it must): run it again."""


class RedisQueue:
    """A `WorkQueue` on Redis through BullMQ; build it with `connect`.

    ``max_attempts`` counts claims that ended in a failure or an expired lease (a released
    claim does not count); ``retry_backoff_s`` doubles with every failed attempt;
    ``keep_finished_s`` is how long finished records are kept (BullMQ removes older ones as
    later jobs finish); ``stalled_interval_s`` is how often `reap` really checks (BullMQ's
    stalled check, rate-limited queue-wide): a lapsed lease is noticed within one interval
    plus one `reap` period, if `reap` runs at least once per interval. ``buckets_per_class``,
    ``bucket_s`` and ``rebase_after_s`` tune the priority packing (`redis_priority`);
    ``timeout_s`` bounds every operation.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        blocking: aioredis.Redis,
        tail: aioredis.Redis,
        *,
        url: str,
        name: str,
        prefix: str,
        max_attempts: int,
        retry_backoff_s: float,
        keep_finished_s: float,
        stalled_interval_s: float,
        priorities: PriorityMap,
        rebase_after_s: float,
        timeout_s: float,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.url = shown(url)
        self.name = name
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.keep_finished_s = keep_finished_s
        self.stalled_interval_s = stalled_interval_s
        self.priorities = priorities
        self.rebase_after_s = rebase_after_s
        self.timeout_s = timeout_s
        self._r = client
        self._blocking = blocking  # a pool: each waiting worker blocks on its own connection
        self._tail_client = tail
        self._bq = bullmq.Queue(name, {"connection": client, "prefix": prefix})
        self._scripts: Any = self._bq.scripts
        self._commands: dict[str, Any] = self._scripts.commands
        # shipped with bullmq (the Node worker's moveToWait / rate limiting) but not registered
        # by its Python side: registered here from BullMQ's own file, through its own loader
        self._to_wait = client.register_script(loadScript("moveJobFromActiveToWait-9.lua"))
        self._keys: dict[str, str] = dict(self._bq.keys)
        self._base = self._keys[""]  # "<prefix>:<name>:", the prefix of every job's key
        self._epoch_key = self._base + "ph:epoch"
        self._token_key = self._base + "ph:token"
        self._rebase_key = self._base + "ph:rebase"
        self._keep = {"age": max(0.0, keep_finished_s)}
        self._epoch: Epoch | None = None
        self._listeners: list[Listener] = []
        self._last_id = "0-0"
        self._tail_task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        name: str = "segments",
        *,
        prefix: str = "playhead",
        max_attempts: int = 3,
        retry_backoff_s: float = 0.5,
        keep_finished_s: float = 60.0,
        stalled_interval_s: float = 5.0,
        buckets_per_class: int = 2**19,
        bucket_s: float = 0.01,
        rebase_after_s: float | None = None,
        timeout_s: float = 5.0,
    ) -> RedisQueue:
        """Connect to ``redis://HOST:PORT/DB`` and start tailing the queue's events from now.

        ``rebase_after_s`` defaults to an eighth of a class's window (11 minutes), so keys
        from about half an hour before now to 55 minutes after it always keep their order.
        """
        priorities = PriorityMap(buckets_per_class, bucket_s)
        queue = cls(
            client(url, timeout_s),
            client(url, timeout_s),
            client(url, timeout_s, single=True),
            url=url,
            name=name,
            prefix=prefix,
            max_attempts=max_attempts,
            retry_backoff_s=retry_backoff_s,
            keep_finished_s=keep_finished_s,
            stalled_interval_s=stalled_interval_s,
            priorities=priorities,
            rebase_after_s=priorities.window_s / 8 if rebase_after_s is None else rebase_after_s,
            timeout_s=timeout_s,
        )
        try:
            async with queue._reachable("connect"):
                await queue._r.ping()
                # the tail starts after the last change made before now: nothing later is missed
                last: Any = await queue._r.xrevrange(queue._keys["events"], "+", "-", count=1)
                queue._last_id = str(last[0][0]) if last else "0-0"
                raw = _text(await queue._r.get(queue._epoch_key))
                queue._epoch = Epoch.load(raw) if raw else None
        except BaseException:
            await queue._close_clients()
            raise
        queue._tail_task = asyncio.create_task(queue._tail(), name=f"queue-events:{name}")
        return queue

    # ---- plumbing ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _reachable(self, what: str, timeout_s: float | None = None) -> AsyncIterator[None]:
        """Bound an operation in time, and name Redis (never its password) when it fails."""
        try:
            async with asyncio.timeout(self.timeout_s if timeout_s is None else timeout_s):
                yield
        except QueueUnavailable:
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:  # TimeoutError too
            why = str(e) or "no answer in time"
            raise QueueUnavailable(
                f"queue {self.name!r}: Redis at {self.url} is unreachable ({what}): {why}"
            ) from e

    def _job_key(self, job_id: str) -> str:
        return self._base + job_id

    def _bq_job(self, job_id: str, priority: int = 0, data: Any = None) -> Any:
        """A BullMQ job object carrying our options (what its scripts' arguments are built
        from: attempts, exponential backoff, how long finished records are kept)."""
        opts: dict[str, Any] = {
            "jobId": job_id,
            "attempts": self.max_attempts,
            "backoff": {"type": "exponential", "delay": round(self.retry_backoff_s * 1000)},
            "removeOnComplete": self._keep,
            "removeOnFail": self._keep,
        }
        if priority:
            opts["priority"] = priority
        return bullmq.Job(self._bq, JOB_NAME, data, opts, job_id)

    async def _transaction(self, keys: list[str], body: Callable[[Pipeline], Awaitable[T]]) -> T:
        """Run ``body`` with ``keys`` watched, again whenever one of them changed under it.

        The body reads through other connections (``self._r``), then switches ``pipe`` to
        ``multi()`` and executes: Redis refuses the EXEC if a watched key changed meanwhile.
        """
        for _ in range(MAX_TRANSACTION_TRIES):
            async with self._r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*keys)
                    return await body(pipe)
                except (WatchError, _Again):
                    continue
        raise RuntimeError(f"queue {self.name!r}: gave up a transaction on {keys} (contention)")

    def _read_state(self, p: Pipeline, job_id: str) -> None:
        """Queue the reads BullMQ's getState script makes (plain reads: a pipeline holding a
        script costs a SCRIPT EXISTS round trip first); `_state_of` gives its answer."""
        k = self._keys
        for name in ("completed", "failed", "delayed", "prioritized"):
            p.zscore(k[name], job_id)
        for name in ("active", "wait", "paused"):
            p.lpos(k[name], job_id)

    @staticmethod
    def _state_of(found: list[Any]) -> str:
        names = ("completed", "failed", "delayed", "prioritized", "active", "waiting", "waiting")
        hits = (name for name, hit in zip(names, found, strict=True) if hit is not None)
        return next(hits, "unknown")

    async def _inspect(self, job_id: str) -> tuple[str, str | None, str | None, str | None]:
        """(BullMQ state, exact priority, payload JSON, epoch) in one round trip."""
        p = self._r.pipeline(transaction=False)
        self._read_state(p, job_id)
        p.hmget(self._job_key(job_id), "pf", "data")
        p.get(self._epoch_key)
        *found, (pf, data), raw_epoch = await p.execute()
        return self._state_of(found), pf, data, raw_epoch

    async def _state(self, job_id: str) -> str:
        p = self._r.pipeline(transaction=False)
        self._read_state(p, job_id)
        return self._state_of(await p.execute())

    def _change_priority(self, pipe: Pipeline, job_id: str, priority: int) -> Awaitable[Any]:
        """BullMQ's changePriority: re-queues a waiting job at ``priority`` behind its peers
        (a delayed one gets it when it falls due; any other just has the field set)."""
        k = self._keys
        keys = [k["wait"], k["paused"], k["meta"], k["prioritized"], k["active"], k["pc"]]
        return self._commands["changePriority"](  # type: ignore[no-any-return]
            keys=[*keys, k["marker"]], args=[priority, self._base, job_id, 0], client=pipe
        )

    def _remove(self, pipe: Pipeline, job_id: str) -> Awaitable[Any]:
        """BullMQ's removeJob (refuses a locked job; tells listeners "removed")."""
        return self._commands["removeJob"](  # type: ignore[no-any-return]
            keys=[self._job_key(job_id), self._keys["repeat"]],
            args=[job_id, "0", self._base],
            client=pipe,
        )

    def _lost(self, code: Any, lease: Lease, what: str) -> None:
        if isinstance(code, int) and code < 0:
            why = _LOST.get(code, f"BullMQ error {code}")
            raise LeaseLost(f"job {lease.job.id}: cannot {what}, lease {lease.token} lost: {why}")

    # ---- the priority epoch -----------------------------------------------------------------

    async def _usable_epoch(self, raw: str | None, priority: float) -> Epoch:
        """The epoch to encode with, read under WATCH; `_Again` after creating or re-basing it
        (which the caller's transaction watched, so it must start over anyway)."""
        if raw is None:
            first = Epoch.first(self.priorities.key_of(priority), time.time())
            await self._r.set(self._epoch_key, first.dump(), nx=True)
            raise _Again
        epoch = Epoch.load(raw)
        self._epoch = epoch
        if time.time() - epoch.at > self.rebase_after_s and await self._rebase(epoch):
            raise _Again
        return epoch

    async def _cached_epoch(self, priority: float) -> Epoch:
        if self._epoch is None:
            raw = _text(await self._r.get(self._epoch_key))
            if raw is None:
                first = Epoch.first(self.priorities.key_of(priority), time.time())
                await self._r.set(self._epoch_key, first.dump(), nx=True)
                raw = _text(await self._r.get(self._epoch_key)) or first.dump()
            self._epoch = Epoch.load(raw)
        return self._epoch

    async def _check_epoch(self, job_id: str, used: Epoch, current: str | None) -> None:
        """After a write that encoded with a cached epoch (read back in the same MULTI): if a
        re-base came first, encode the job again under the new one."""
        if current is not None and current != used.dump():
            self._epoch = Epoch.load(current)
            await self._reencode(job_id)

    async def _reencode(self, job_id: str) -> None:
        """Put a waiting job at its exact priority under the current epoch."""

        async def body(pipe: Pipeline) -> None:
            state, pf, _, raw = await self._inspect(job_id)
            if state not in _WAITING or pf is None:
                return
            epoch = await self._usable_epoch(raw, float(pf))
            _multi(pipe)
            await self._change_priority(pipe, job_id, self.priorities.encode(float(pf), epoch))
            await pipe.execute()

        await self._transaction([self._job_key(job_id), self._epoch_key], body)

    async def _rebase(self, seen: Epoch) -> bool:
        """Roll the epoch forward and re-encode every waiting job from its exact priority, in
        one MULTI: claims see either the old encoding or the new one, never a mix. True if the
        epoch moved (here or by another client)."""
        me = uuid.uuid4().hex
        if not await self._r.set(self._rebase_key, me, nx=True, px=REBASE_LOCK_MS):
            return False  # another client is at it; our transaction retries if it succeeds
        k = self._keys
        try:
            for _ in range(10):
                async with self._r.pipeline(transaction=True) as pipe:
                    try:
                        # anything that adds, claims or re-queues a job touches one of these
                        await pipe.watch(self._epoch_key, k["prioritized"], k["wait"], k["delayed"])
                        p = self._r.pipeline(transaction=False)
                        p.get(self._epoch_key)
                        p.lrange(k["wait"], 0, -1)
                        p.zrange(k["prioritized"], 0, -1)
                        p.zrange(k["delayed"], 0, -1)
                        raw, waiting, prioritized, delayed = await p.execute()
                        if raw != seen.dump():
                            return True
                        if delayed:  # their priority changes without touching a watched set
                            await pipe.watch(*(self._job_key(j) for j in delayed))
                        ids = [*reversed(waiting), *prioritized, *delayed]  # claim order
                        p = self._r.pipeline(transaction=False)
                        for job_id in ids:
                            p.hget(self._job_key(job_id), "pf")
                        pfs = await p.execute()
                        new = seen.rolled(time.time())
                        _multi(pipe)
                        pipe.set(self._epoch_key, new.dump())
                        for job_id, pf in zip(ids, pfs, strict=True):
                            if pf is not None:
                                encoded = self.priorities.encode(float(pf), new)
                                await self._change_priority(pipe, job_id, encoded)
                        await pipe.execute()
                    except WatchError:
                        await asyncio.sleep(0.001)
                        continue
                    self._epoch = new
                    log.info("queue %r: priority epoch re-based (%d jobs)", self.name, len(ids))
                    return True
            log.warning("queue %r: priority re-base kept colliding with other writes", self.name)
            return False
        finally:
            if await self._r.get(self._rebase_key) == me:
                await self._r.delete(self._rebase_key)

    # ---- the interface ----------------------------------------------------------------------

    async def submit(self, job: Job) -> None:
        data = json.dumps(job.payload, separators=(",", ":"), allow_nan=False)
        key = self._job_key(job.id)

        async def body(pipe: Pipeline) -> None:
            state, pf, stored, raw = await self._inspect(job.id)
            if state == "active":
                return  # running: left alone
            if state in _WAITING and pf is not None:
                if float(pf) == job.priority:
                    return
                epoch = await self._usable_epoch(raw, job.priority)
                _multi(pipe)
                await self._change_priority(
                    pipe, job.id, self.priorities.encode(job.priority, epoch)
                )
                pipe.hset(key, "pf", repr(job.priority))
                if stored != data:  # like the in-process queue: the new submission wins
                    await self._commands["updateData"](keys=[key], args=[data], client=pipe)
                await pipe.execute()
                return
            epoch = await self._usable_epoch(raw, job.priority)
            _multi(pipe)
            if state != "unknown" or pf is not None or stored is not None:
                # finished (or a stray record): BullMQ ignores adding an id it has, so the old
                # record goes first; attempts start again from zero
                await self._remove(pipe, job.id)
            bq_job = self._bq_job(job.id, self.priorities.encode(job.priority, epoch), job.payload)
            await self._scripts.addJob(bq_job, pipe)
            pipe.hset(key, "pf", repr(job.priority))
            await pipe.execute()

        async with self._reachable("submit"):
            await self._transaction([key, self._epoch_key], body)

    async def reprioritise(self, job_id: str, priority: float) -> bool:
        if math.isnan(priority):
            raise ValueError(f"job {job_id}: priority is NaN")
        key = self._job_key(job_id)

        async def body(pipe: Pipeline) -> bool:
            state, pf, _, raw = await self._inspect(job_id)
            if state not in _WAITING or pf is None:
                return False
            if float(pf) == priority:
                return True
            epoch = await self._usable_epoch(raw, priority)
            _multi(pipe)
            await self._change_priority(pipe, job_id, self.priorities.encode(priority, epoch))
            pipe.hset(key, "pf", repr(priority))
            await pipe.execute()
            return True

        async with self._reachable("reprioritise"):
            return await self._transaction([key, self._epoch_key], body)

    async def cancel(self, job_id: str) -> bool:
        async def body(pipe: Pipeline) -> bool:
            state = await self._state(job_id)
            if state not in _WAITING:
                return False
            _multi(pipe)
            await self._remove(pipe, job_id)
            (removed,) = await pipe.execute()
            return bool(removed == 1)

        async with self._reachable("cancel"):
            return await self._transaction([self._job_key(job_id)], body)

    async def interrupt(self, job_id: str) -> bool:
        key = self._job_key(job_id)
        async with self._reachable("interrupt"):
            token = await self._r.get(key + ":lock")  # held: running, and its holder alive
            if token is None:
                return False
            # meant for this claim only: a later claim of the job has another token
            await self._r.set(key + ":interrupt", token, px=INTERRUPT_TTL_MS)
            return True

    async def claim(
        self, worker: str, lease_s: float, max_priority: float = math.inf
    ) -> Lease | None:
        async with self._reachable("claim"):
            while True:
                if max_priority < math.inf:
                    head = await self._head_priority()
                    if head is not None and head > max_priority:
                        return None
                token = int(await self._r.incr(self._token_key))
                got = await self._activate(token, lease_s)
                if got is None:
                    return None
                job_id, fields = got
                if self._doomed(fields):  # out of attempts (BullMQ's "deferred failure")
                    await self._fail_for_good(job_id, token, LEASE_EXPIRED)
                    continue
                job = Job(job_id, json.loads(fields["data"]), float(fields["pf"]))
                if job.priority > max_priority:  # raced past the peek: give it back
                    await self._requeue(job_id, token, job.priority)
                    return None
                attempt = int(fields.get("atm", 0)) + int(fields.get("stc", 0)) + 1
                return Lease(job, worker, token, time.time() + lease_s, attempt)

    async def _head_priority(self) -> float | None:
        """The exact priority of the job `moveToActive` would take next (the ``wait`` list,
        where stalled jobs wait to be failed, comes before ``prioritized``)."""
        p = self._r.pipeline(transaction=False)
        p.lindex(self._keys["wait"], -1)
        p.zrange(self._keys["prioritized"], 0, 0)
        waiting, prioritized = await p.execute()
        head = waiting or (prioritized[0] if prioritized else None)
        if head is None:
            return None
        pf = await self._r.hget(self._job_key(head), "pf")
        return None if pf is None else float(pf)

    async def _activate(self, token: int, lease_s: float) -> tuple[str, dict[str, str]] | None:
        """BullMQ's moveToActive: the next job, locked with ``token`` for ``lease_s``."""
        lock_ms = max(1, round(lease_s * 1000))
        fields, job_id, _, _ = await self._scripts.moveToActive(
            str(token), {"lockDuration": lock_ms}
        )
        return (job_id, fields) if fields else None

    def _doomed(self, fields: dict[str, str]) -> bool:
        tried = int(fields.get("atm", 0)) + int(fields.get("stc", 0))
        return "defa" in fields or tried >= self.max_attempts

    async def _fail_for_good(self, job_id: str, token: int, error: str) -> Any:
        keys, args = self._scripts.moveToFailedArgs(
            self._bq_job(job_id), error, self._keep, str(token), False
        )
        return await self._commands["moveToFinished"](keys=keys, args=args)

    async def _requeue(self, job_id: str, token: int, priority: float) -> Any:
        """BullMQ's moveJobFromActiveToWait: back at its priority, ahead of its peers."""
        epoch = await self._cached_epoch(priority)
        k = self._keys
        keys = [k[s] for s in ("active", "wait", "stalled", "paused", "meta", "limiter")]
        keys += [k["prioritized"], k["marker"], k["events"]]
        p = self._r.pipeline(transaction=True)
        # the priority it goes back under, encoded now: it may predate a re-base
        p.hset(self._job_key(job_id), "priority", self.priorities.encode(priority, epoch))
        await self._to_wait(keys=keys, args=[job_id, str(token), self._job_key(job_id)], client=p)
        # the script leaves no marker for a prioritized job: wake an idle worker as BullMQ's
        # other re-queues do (its base marker: member "0", score 0)
        p.zadd(k["marker"], {"0": 0})
        p.get(self._epoch_key)
        _, code, _, current = await p.execute()
        await self._check_epoch(job_id, epoch, current)
        return code

    async def wait_for_work(self, timeout: float) -> None:
        """BZPOPMIN on BullMQ's marker, like its worker: every add, re-queue and claim leaves
        one; a delayed job's marker carries its due time, and the wait then ends at that time.
        A marker wakes one waiter: others wake on the next one, or at their timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        async with self._reachable("wait_for_work", max(0.0, timeout) + self.timeout_s):
            while (left := deadline - time.monotonic()) > 0:
                popped = await self._blocking.bzpopmin(
                    self._keys["marker"], timeout=max(0.01, min(left, BLOCK_S))
                )
                if popped is None:
                    continue
                _, member, score = popped
                due_in = float(score) / 1000 - time.time()
                if member == "0" or due_in <= 0:
                    return
                deadline = min(deadline, time.monotonic() + due_in)

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        key = self._job_key(lease.job.id)
        async with self._reachable("renew"):
            p = self._r.pipeline(transaction=True)
            await self._scripts.extendLock(
                lease.job.id, str(lease.token), max(1, round(lease_s * 1000)), p
            )
            p.get(key + ":interrupt")
            extended, interrupt = await p.execute()
        if extended != 1:
            raise LeaseLost(f"job {lease.job.id}: lease {lease.token} expired or was superseded")
        return replace(
            lease, expires_at=time.time() + lease_s, interrupted=interrupt == str(lease.token)
        )

    async def complete(self, lease: Lease, result: dict[str, Any]) -> None:
        # results are JSON like payloads; a bad one raises here and the lease is still held
        stored = json_copy(result, f"job {lease.job.id}: result")
        async with self._reachable("complete"):
            keys, args = self._scripts.moveToCompletedArgs(
                self._bq_job(lease.job.id), stored, self._keep, str(lease.token), False
            )
            code = await self._commands["moveToFinished"](keys=keys, args=args)
        self._lost(code, lease, "complete")

    async def fail(self, lease: Lease, error: str, retry: bool) -> None:
        async with self._reachable("fail"):
            if not (retry and lease.attempt < self.max_attempts):
                code = await self._fail_for_good(lease.job.id, lease.token, error)
                self._lost(code, lease, "fail")
                return
            # BullMQ's exponential backoff: the delay doubles with every failed attempt
            delay_ms = round(self.retry_backoff_s * 1000 * 2 ** (lease.attempt - 1))
            epoch = await self._cached_epoch(lease.job.priority)
            keys, args = self._scripts.moveToDelayedArgs(
                lease.job.id,
                round(time.time() * 1000),
                str(lease.token),
                delay_ms,
                {"fieldsToUpdate": {"failedReason": error}},
            )
            p = self._r.pipeline(transaction=True)
            # the priority it is queued under when it falls due, encoded under today's epoch
            encoded = self.priorities.encode(lease.job.priority, epoch)
            p.hset(self._job_key(lease.job.id), "priority", encoded)
            await self._commands["moveToDelayed"](keys=keys, args=args, client=p)
            p.get(self._epoch_key)
            _, code, current = await p.execute()
            self._lost(code, lease, "fail")
            await self._check_epoch(lease.job.id, epoch, current)

    async def release(self, lease: Lease) -> None:
        async with self._reachable("release"):
            code = await self._requeue(lease.job.id, lease.token, lease.job.priority)
        self._lost(code, lease, "release")

    async def reap(self) -> list[str]:
        """BullMQ's stalled check (at most once per ``stalled_interval_s``, queue-wide): a job
        still active since the previous check whose lock has expired goes back to its place
        in the queue, or fails (``lease expired``) once it has used up its attempts."""
        async with self._reachable("reap"):
            reaped: list[str] = await self._scripts.moveStalledJobsToWait(
                self.max_attempts - 1, max(1, round(self.stalled_interval_s * 1000))
            )
            if not reaped:
                return []
            p = self._r.pipeline(transaction=False)
            for job_id in reaped:
                p.hgetall(self._job_key(job_id))
            doomed = 0
            for job_id, fields in zip(reaped, await p.execute(), strict=True):
                if not fields:
                    continue
                if self._doomed(fields):
                    doomed += 1
                    continue
                # BullMQ put it at the head of the line (the `wait` list); its place is by
                # priority, or it would block workers limited to urgent work
                await self._r.hset(self._job_key(job_id), "failedReason", LEASE_EXPIRED)
                await self._reencode(job_id)
            await self._fail_doomed(doomed)
            return reaped

    async def _fail_doomed(self, count: int) -> None:
        """Fail the stalled jobs left in ``wait``: as BullMQ's worker does, by claiming them
        (`wait` comes first) and failing the claim. Another client may have emptied the list
        in between: a job claimed from ``prioritized`` then is given back as it was."""
        for _ in range(count):
            if not await self._r.llen(self._keys["wait"]):
                return
            token = int(await self._r.incr(self._token_key))
            got = await self._activate(token, 60.0)
            if got is None:
                return
            job_id, fields = got
            if self._doomed(fields):
                await self._fail_for_good(job_id, token, LEASE_EXPIRED)
            else:
                await self._requeue(job_id, token, float(fields["pf"]))

    async def state(self, job_id: str) -> JobState | None:
        async with self._reachable("state"):
            return _STATES.get(await self._state(job_id))

    async def result(self, job_id: str) -> dict[str, Any] | None:
        async with self._reachable("result"):
            raw = await self._r.hget(self._job_key(job_id), "returnvalue")
        value = None if raw is None else json.loads(raw)
        return value if isinstance(value, dict) else None

    async def error(self, job_id: str) -> str | None:
        async with self._reachable("error"):
            reason = await self._r.hget(self._job_key(job_id), "failedReason")
        return None if reason is None else str(reason)

    async def stats(self) -> dict[str, int]:
        k = self._keys
        async with self._reachable("stats"):
            p = self._r.pipeline(transaction=True)
            p.llen(k["wait"])
            p.zcard(k["prioritized"])
            p.zcard(k["delayed"])
            p.llen(k["active"])
            p.zcard(k["completed"])
            p.zcard(k["failed"])
            wait, prioritized, delayed, active, completed, failed = await p.execute()
        return {
            JobState.QUEUED.value: wait + prioritized + delayed,
            JobState.RUNNING.value: active,
            JobState.DONE.value: completed,
            JobState.FAILED.value: failed,
        }

    async def pending(self) -> list[Job]:
        """Claim order: ``wait`` (from its claim end), ``prioritized``; then the jobs backing
        off, by priority."""
        k = self._keys
        async with self._reachable("pending"):
            p = self._r.pipeline(transaction=True)
            p.lrange(k["wait"], 0, -1)
            p.zrange(k["prioritized"], 0, -1)
            p.zrange(k["delayed"], 0, -1)
            waiting, prioritized, delayed = await p.execute()
            ready = [*reversed(waiting), *prioritized]
            p = self._r.pipeline(transaction=False)
            for job_id in [*ready, *delayed]:
                p.hmget(self._job_key(job_id), "pf", "data")
            rows = await p.execute()
        jobs = [
            Job(job_id, json.loads(data), float(pf))
            for job_id, (pf, data) in zip([*ready, *delayed], rows, strict=True)
            if pf is not None and data is not None  # gone since the first read
        ]
        ready_ids = set(ready)
        return [j for j in jobs if j.id in ready_ids] + sorted(
            (j for j in jobs if j.id not in ready_ids), key=lambda j: j.priority
        )

    async def running(self) -> list[str]:
        async with self._reachable("running"):
            active: list[str] = await self._r.lrange(  # type: ignore[assignment]
                self._keys["active"], 0, -1
            )
        return active[::-1]  # oldest claim first

    def watch(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._listeners.clear()
        if self._tail_task is not None:
            self._tail_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail_task
        await self._close_clients()

    async def _close_clients(self) -> None:
        for r in (self._tail_client, self._blocking, self._r):
            with contextlib.suppress(Exception):
                await r.aclose()

    # ---- the event tail ---------------------------------------------------------------------

    async def _tail(self) -> None:
        """Tell listeners every change in BullMQ's event stream, in order; through a Redis
        restart too (reconnecting with backoff, from the last entry it saw)."""
        stream = self._keys["events"]
        backoff = 0.05
        while not self._closed:
            try:
                async with asyncio.timeout(TAIL_BLOCK_MS / 1000 + self.timeout_s):
                    batches: Any = await self._tail_client.xread(
                        {stream: self._last_id}, count=1000, block=TAIL_BLOCK_MS
                    )
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                if backoff == 0.05:
                    log.warning("queue %r: event stream at %s lost (%s)", self.name, self.url, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if backoff > 0.05:
                log.info("queue %r: event stream at %s is back", self.name, self.url)
                backoff = 0.05
            for _, entries in batches or []:
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    change = _change(entry_id, fields)
                    if change is not None:
                        self._tell(change)

    def _tell(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("queue %r: a listener failed on %s", self.name, change)


def _change(entry_id: str, fields: dict[str, str]) -> Change | None:
    """The change one BullMQ event stands for, if any (see docs/queue.md)."""
    job_id = fields.get("jobId")
    event = fields.get("event")
    if not job_id:
        return None  # "drained", "cleaned", …
    at = int(entry_id.split("-", 1)[0]) / 1000
    if event == "waiting":
        # promoted after its backoff: it has been queued since its "delayed" event
        return None if fields.get("prev") == "delayed" else Change(job_id, JobState.QUEUED, at)
    if event == "delayed":
        return Change(job_id, JobState.QUEUED, at)
    if event == "active":
        return Change(job_id, JobState.RUNNING, at)
    if event == "completed":
        value = json.loads(fields.get("returnvalue") or "null")
        return Change(job_id, JobState.DONE, at, result=value if isinstance(value, dict) else None)
    if event == "failed":
        return Change(job_id, JobState.FAILED, at, error=fields.get("failedReason"))
    if event == "removed" and fields.get("prev") in _REMOVED_WHILE_WAITING:
        return Change(job_id, JobState.CANCELLED, at)
    return None  # "added" (then "waiting"), "stalled" (then "waiting"), "duplicated", …
