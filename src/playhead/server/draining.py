"""uvicorn's server, told when shutdown begins, with an optional drain period.

On the first SIGTERM (or SIGINT) the replica's runtime is marked draining at once, so
``/readyz`` answers 503 ``draining``. With ``drain_s`` > 0 it then keeps serving that long, so a
load balancer that probes ``/readyz`` stops sending requests before the port closes; after it
(or at once, with ``drain_s`` 0, or on a second signal) uvicorn shuts down as usual: it stops
accepting, lets the requests in flight finish and runs the app's lifespan shutdown.

On Kubernetes a ``preStop`` sleep does the same job before the signal is even sent (the pod
leaves the Service's endpoints as soon as it is terminating), so there ``--drain`` may stay 0.
"""

from __future__ import annotations

import logging
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_s: float = 0.0) -> None:
        super().__init__(config)
        self._app = app
        self.drain_s = max(0.0, drain_s)
        self._drain: tuple[int, float] | None = None  # (signal, monotonic deadline)
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A signal handler: only sets flags (the event loop acts on them)."""
        runtime = getattr(self._app.state, "runtime", None)  # absent while starting up
        if runtime is not None:
            runtime.drain()
        if self._drain is None and self.drain_s > 0 and not self.should_exit:
            self._drain = (sig, time.monotonic() + self.drain_s)
            return
        super().handle_exit(sig, frame)  # no drain, or a second signal: stop now

    async def on_tick(self, counter: int) -> bool:
        if self._drain is not None and not self.should_exit:
            sig, deadline = self._drain
            if not self._announced:
                self._announced = True
                log.info("draining: /readyz answers 503; stopping in %.1f s", self.drain_s)
            if time.monotonic() >= deadline:
                super().handle_exit(sig, None)
        return await super().on_tick(counter)
