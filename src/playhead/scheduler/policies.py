"""The registry of scheduling policies, by the name ``playhead serve --policy`` takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from playhead.scheduler.baselines import OnDemandPolicy, SequentialPolicy
from playhead.scheduler.deadline import DeadlinePolicy
from playhead.scheduler.plan import PolicyBase

Policy = PolicyBase

POLICIES: Mapping[str, Callable[[], Policy]] = {
    "deadline": DeadlinePolicy,
    "on-demand": OnDemandPolicy,
    "sequential": SequentialPolicy,
}


def get_policy(name: str) -> Policy:
    try:
        factory = POLICIES[name]
    except KeyError:
        known = ", ".join(POLICIES)
        raise ValueError(f"unknown scheduling policy {name!r}; known policies: {known}") from None
    return factory()
