"""What a planner asks of the queue (and of the exports) after an event."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from playhead.scheduler.model import JobSpec


@dataclass
class Ops:
    """What to do to the queue (and the exports) after an event."""

    submit: list[JobSpec] = field(default_factory=list)
    reprioritise: list[tuple[str, float]] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    interrupt: list[str] = field(default_factory=list)
    exports: list[tuple[str, float]] = field(default_factory=list)  # (id, since): write now
    failed_exports: list[tuple[str, str]] = field(default_factory=list)  # (id, why)

    def extend(self, other: Ops) -> None:
        """Then do ``other`` too, as one set of operations: for a job both touch, the later
        operation wins, so the result is right whatever order the queue applies it in."""
        later = (
            {j.job_id for j in other.submit}
            | {j for j, _ in other.reprioritise}
            | set(other.cancel)
        )
        moved = dict(other.reprioritise)
        submitted = {j.job_id for j in self.submit}
        # a job submitted here and moved there: submit it at the new priority
        self.submit = [
            replace(j, priority=moved[j.job_id]) if j.job_id in moved else j
            for j in self.submit
            if j.job_id not in other.cancel
        ]
        self.submit += other.submit
        self.reprioritise = [(j, p) for j, p in self.reprioritise if j not in later]
        self.reprioritise += [(j, p) for j, p in other.reprioritise if j not in submitted]
        # cancelled there but only submitted here: never sent at all
        self.cancel = [j for j in self.cancel if j not in later]
        self.cancel += [j for j in other.cancel if j not in submitted]
        self.interrupt += other.interrupt
        self.exports += other.exports
        self.failed_exports += other.failed_exports

    def __bool__(self) -> bool:
        return any(
            (
                self.submit,
                self.reprioritise,
                self.cancel,
                self.interrupt,
                self.exports,
                self.failed_exports,
            )
        )
