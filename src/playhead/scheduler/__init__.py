"""Pure scheduling policy: sessions, segment states and costs in; queue operations out.

No I/O and no clock of its own (``now`` is always passed in), so it is unit-tested with a
driven clock and runs inside the simulator unchanged. See `deadline` for the policy and its
degradation rule, `baselines` for the policies it is measured against.
"""

from __future__ import annotations

from playhead.scheduler.baselines import OnDemandPolicy, SequentialPolicy
from playhead.scheduler.cost import CostModel
from playhead.scheduler.deadline import DeadlinePolicy
from playhead.scheduler.model import (
    SETTLED,
    JobSpec,
    Plan,
    RenderInfo,
    RenderState,
    SegmentState,
    Session,
    parse_job_id,
    segment_job_id,
)
from playhead.scheduler.plan import PolicyBase, Shares, load
from playhead.scheduler.policies import POLICIES, Policy, get_policy
from playhead.scheduler.priority import (
    CLASS_SPAN,
    Priority,
    encode_priority,
    priority_class,
    priority_key,
)
from playhead.scheduler.shares import fair_shares

__all__ = [
    "CLASS_SPAN",
    "POLICIES",
    "SETTLED",
    "CostModel",
    "DeadlinePolicy",
    "JobSpec",
    "OnDemandPolicy",
    "Plan",
    "Policy",
    "PolicyBase",
    "Priority",
    "RenderInfo",
    "RenderState",
    "SegmentState",
    "SequentialPolicy",
    "Session",
    "Shares",
    "encode_priority",
    "fair_shares",
    "get_policy",
    "load",
    "parse_job_id",
    "priority_class",
    "priority_key",
    "segment_job_id",
]
