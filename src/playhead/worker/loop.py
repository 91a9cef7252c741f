"""The worker loop: claim → run → complete, with lease renewal and a graceful stop.

The same loop runs as threads inside ``playhead serve`` and as ``playhead worker`` processes
on GPU nodes; it only talks to the WorkQueue and the Store. A worker killed mid-job loses
nothing: its lease expires, the job is claimed again elsewhere, and a late completion from the
old holder is rejected by its fencing token.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from playhead.errors import PlayheadError
from playhead.queue import Lease, LeaseLost, WorkQueue

log = logging.getLogger(__name__)

Execute = Callable[[dict[str, Any]], dict[str, Any]]


class Worker:
    """One worker: a thread that claims and runs jobs until `stop()`."""

    def __init__(
        self,
        name: str,
        queue: WorkQueue,
        execute: Execute,
        wake: threading.Event,
        lease_s: float = 30.0,
        idle_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        limit: Callable[[float], float] | None = None,
    ) -> None:
        self.name = name
        self.queue = queue
        self.execute = execute
        self.lease_s = lease_s
        self.idle_s = idle_s
        self.clock = clock
        self.limit = limit  # now → the least urgent priority this worker may claim
        self._wake = wake  # set by whoever submits work, so an idle worker claims at once
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.busy_seconds = 0.0
        self.started_at = clock()
        self.current: str | None = None

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Stop claiming; the job in hand finishes."""
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming and wait ``timeout`` for the job in hand (or its lease lapses)."""
        self.request_stop()
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def busy_ratio(self) -> float:
        return self.busy_seconds / max(self.clock() - self.started_at, 1e-9)

    def _run(self) -> None:
        while not self._stopping.is_set():
            now = self.clock()
            ceiling = self.limit(now) if self.limit else math.inf
            lease = self.queue.claim(self.name, now, self.lease_s, ceiling)
            if lease is None:
                self._wake.wait(self.idle_s)
                self._wake.clear()
                continue
            self._work(lease)

    def _work(self, lease: Lease) -> None:
        started = time.perf_counter()
        self.current = lease.job.id
        renewer = _Renewer(self, lease)
        renewer.start()
        try:
            result = self.execute(lease.job.payload)
        except PlayheadError as e:  # bad input: retrying cannot help
            log.warning("job %s failed: %s", lease.job.id, e.message)
            reason = e.message
            self._finish(renewer, lambda lz: self.queue.fail(lz, self.clock(), reason, False))
        except Exception as e:
            log.exception("job %s crashed", lease.job.id)
            crash = f"{type(e).__name__}: {e}"
            self._finish(renewer, lambda lz: self.queue.fail(lz, self.clock(), crash, True))
        else:
            self._finish(renewer, lambda lz: self.queue.complete(lz, self.clock(), result))
        finally:
            self.busy_seconds += time.perf_counter() - started
            self.current = None

    def _finish(self, renewer: _Renewer, action: Callable[[Lease], None]) -> None:
        lease = renewer.stop()
        try:
            action(lease)
        except LeaseLost:
            log.warning("lease on %s was lost; another worker has the job", lease.job.id)


class _Renewer:
    """Renews a lease every third of its length while the job runs."""

    def __init__(self, worker: Worker, lease: Lease) -> None:
        self.worker = worker
        self.lease = lease
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"{worker.name}-renew", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Lease:
        self._done.set()
        self._thread.join()
        return self.lease

    def _run(self) -> None:
        w = self.worker
        while not self._done.wait(w.lease_s / 3):
            try:
                self.lease = w.queue.renew(self.lease, w.clock(), w.lease_s)
            except LeaseLost:
                log.warning("could not renew the lease on %s", self.lease.job.id)
                return
