"""The plug-in point: a `Policy` turns one snapshot of the world into a `Plan`.

Policies are pure: same arguments, same plan. They read no clock (``now`` is given), do no
I/O and keep no state between calls, so the server can call one on every event (a session
report, a segment request, a job completion) and the simulator can drive one unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from playhead.scheduler.baselines import OnDemandPolicy, SequentialPolicy
from playhead.scheduler.cost import CostModel
from playhead.scheduler.deadline import DeadlinePolicy
from playhead.scheduler.model import Plan, RenderState, Session


class Policy(Protocol):
    def plan(
        self,
        now: float,
        sessions: Sequence[Session],
        renders: Mapping[str, RenderState],
        queued: Mapping[str, float],
        cost: CostModel,
        workers: int,
    ) -> Plan:
        """Decide what to submit, reprioritise and cancel.

        ``renders`` must hold every render that a session watches or an export needs; queued
        jobs of any other render are cancelled. ``queued`` is job id → priority of the jobs
        waiting in the queue (not claimed). ``workers`` is the number of live workers; 0 or
        less means unknown.
        """
        ...


POLICIES: Mapping[str, Callable[[], Policy]] = {
    "deadline": DeadlinePolicy,
    "on-demand": OnDemandPolicy,
    "sequential": SequentialPolicy,
}
"""Policy factories by the name ``playhead serve --policy`` takes."""


def get_policy(name: str) -> Policy:
    try:
        factory = POLICIES[name]
    except KeyError:
        known = ", ".join(POLICIES)
        raise ValueError(f"unknown scheduling policy {name!r}; known policies: {known}") from None
    return factory()
