"""The event-driven planner: each event replans only what it touches, and the queue it keeps
is always what planning everything from scratch would keep (a fixed point of `plan`)."""

from __future__ import annotations

import random

import pytest

from playhead.queue import JobState
from playhead.scheduler import (
    CLASS_SPAN,
    CostModel,
    DeadlinePolicy,
    JobSpec,
    Plan,
    Priority,
    RenderInfo,
    SegmentState,
    Session,
    get_policy,
    parse_job_id,
    priority_class,
)
from playhead.scheduler.ops import Ops
from playhead.scheduler.planner import Planner

FPS, S = 30.0, 30
CHEAP = CostModel(prior=1e-4)


def info(render_id: str = "r", segments: int = 100, effect: str = "cost") -> RenderInfo:
    return RenderInfo(render_id, FPS, S, segments * S, effect)


def playing(at: int, t: float, render: str = "r", sid: str = "s", rate: float = 1.0) -> Session:
    return Session(sid, render, at, True, rate, t)


def paused(at: int, t: float, render: str = "r", sid: str = "s") -> Session:
    return Session(sid, render, at, False, 1.0, t)


def planner(*renders: RenderInfo, cost: CostModel = CHEAP, workers: int = 4) -> Planner:
    p = Planner(DeadlinePolicy(), cost)
    for r in renders or (info(),):
        p.add_render(r)
    p.set_workers(workers, 0.0)
    return p


def segments(ops: Ops, render: str = "r") -> list[int]:
    return [j.segment for j in ops.submit if j.render == render]


def test_a_new_paused_viewer_gets_a_short_window_and_nothing_urgent() -> None:
    p = planner()
    ops = p.report(paused(0, 1.0), 1.0)
    assert segments(ops) == [0, 1, 2, 3, 4]
    assert all(j.klass is Priority.PAUSED for j in ops.submit)


def test_steady_playback_adds_one_segment_per_segment_played() -> None:
    p = planner()
    first = p.report(playing(0, 0.0), 0.0)
    assert segments(first) == list(range(30))
    for t in range(1, 4):  # a worker keeps a segment ahead
        p.changed(f"r:{t}", JobState.RUNNING, t - 0.9)
        p.changed(f"r:{t}", JobState.DONE, t - 0.5, {"frames": S, "seconds": 0.4})
        if t == 1:
            p.changed("r:0", JobState.RUNNING, 0.0)
            p.changed("r:0", JobState.DONE, 0.4, {"frames": S, "seconds": 0.4})
        ops = p.report(playing(t * S, float(t)), float(t))
        assert segments(ops) == [29 + t] and not ops.reprioritise and not ops.cancel


def test_a_seek_is_urgent_until_ready_and_the_mark_leaves_with_the_viewer() -> None:
    p = planner()
    p.report(playing(0, 0.0), 0.0)
    ops = p.report(playing(80 * S, 0.5), 0.5)
    assert ops.submit[0].segment == 80 and ops.submit[0].klass is Priority.URGENT
    assert set(ops.cancel) == {f"r:{k}" for k in range(30)}  # behind the new playhead
    p.changed("r:80", JobState.RUNNING, 0.6)
    p.changed("r:80", JobState.DONE, 1.2, {"frames": 30, "seconds": 0.6})
    assert p.renders["r"].urgent == {}
    # a viewer that seeks and leaves takes its urgent mark with it
    p.report(playing(50 * S, 2.0), 2.0)
    assert p.renders["r"].urgent == {50: 2.0}
    ops = p.leave("s", 2.1)
    assert p.renders["r"].urgent == {} and "r:50" in ops.cancel


def test_requests_mark_until_they_end_and_an_evicted_segment_is_rendered_again() -> None:
    p = planner()
    p.add_render(info("x"), ready=[3])
    ops = p.request("x", 3, "req-1", 5.0)  # its replica found it missing: evicted
    assert segments(ops, "x") == [3] and ops.submit[0].klass is Priority.URGENT
    ops = p.unrequest("x", 3, "req-1", 6.0)
    assert ops.cancel == ["x:3"]  # nobody waits for it any more
    assert p.unrequest("x", 3, "req-1", 6.0).cancel == []  # idempotent


def test_a_failed_segment_answers_with_its_cause_then_is_tried_again() -> None:
    p = planner()
    p.report(paused(0, 0.0), 0.0)
    p.changed("r:0", JobState.RUNNING, 0.1)
    p.export("r", "e1", 0.2, 0.2)
    ops = p.changed("r:0", JobState.FAILED, 0.5, error="RuntimeError: boom")
    assert p.segment_state("r", 0) is SegmentState.FAILED
    assert p.failure("r", 0) == "RuntimeError: boom"
    assert ops.failed_exports == [("e1", "segment 0 failed: RuntimeError: boom")]
    assert "r:0" not in p.queued()
    assert p.export("r", "e2", 1.0, 1.0).failed_exports[0][0] == "e2"  # fails at once
    assert not p.tick(10.0).submit  # cooling down
    ops = p.tick(0.5 + p.failure_cooldown_s)
    assert "r:0" in [j.job_id for j in ops.submit] and p.failure("r", 0) is None


def test_an_export_is_written_once_every_segment_is_ready() -> None:
    p = planner(info(segments=3))
    ops = p.export("r", "e1", 1.0, 1.0)
    assert segments(ops) == [0, 1, 2] and all(j.klass is Priority.EXPORT for j in ops.submit)
    for k in range(3):
        p.changed(f"r:{k}", JobState.RUNNING, 2.0)
        ops = p.changed(f"r:{k}", JobState.DONE, 3.0, {"frames": 30, "seconds": 0.3})
    assert ops.exports == [("e1", 1.0)]
    assert not p.report(paused(0, 4.0), 4.0).exports  # asked for once only


def test_unneeded_running_work_is_interrupted_only_when_urgent_work_waits() -> None:
    p = planner(info("a"), info("b"))
    p.report(playing(0, 0.0, "a", "va"), 0.0)
    p.changed("a:5", JobState.RUNNING, 0.1)
    ops = p.leave("va", 0.2)  # nobody needs a:5 now; nothing urgent waits: it finishes
    assert ops.interrupt == [] and "a:6" in ops.cancel
    p.report(playing(0, 0.3, "b", "vb"), 0.3)
    ops = p.report(playing(60 * S, 0.4, "b", "vb"), 0.4)  # a seek: urgent work waits
    assert ops.interrupt == ["a:5"]
    assert p.report(playing(60 * S, 0.5, "b", "vb"), 0.5).interrupt == []  # asked once


def test_a_deleted_render_cancels_its_work_and_forgets_its_viewers() -> None:
    p = planner()
    p.report(playing(0, 0.0), 0.0)
    p.changed("r:0", JobState.RUNNING, 0.1)
    p.export("r", "e", 0.1, 0.1)
    ops = p.drop_render("r")
    assert len(ops.cancel) == 99 and ops.interrupt == ["r:0"]  # the export wanted them all
    assert ops.failed_exports == [("e", "the asset was deleted")]
    assert p.sessions == {} and p.queued() == {}
    assert not p.tick(1.0) and not p.changed("r:1", JobState.DONE, 1.0)


def test_overload_holds_the_greedy_session_and_releases_it_when_capacity_returns() -> None:
    cost = CostModel(per_frame={"cheap": 0.005, "slow": 0.1})
    p = planner(info("a", effect="cheap"), info("h", effect="slow"), cost=cost, workers=2)
    p.report(playing(0, 0.0, "a", "a"), 0.0)
    ops = p.report(playing(0, 0.0, "h", "h", rate=2.0), 0.0)
    assert len(segments(ops, "h")) == 9  # held to its share: 9 segments, not 30
    ops = p.set_workers(20, 0.1)  # the fleet scaled out: the full horizon comes back
    assert len(segments(ops, "h")) == 21


def test_a_reaped_job_back_in_the_queue_gets_its_priority_set() -> None:
    p = planner()
    p.report(paused(0, 0.0), 0.0)
    p.changed("r:0", JobState.RUNNING, 0.1)
    ops = p.changed("r:0", JobState.QUEUED, 5.0)  # its worker died; the queue gave it back
    assert [job for job, _ in ops.reprioritise] == ["r:0"]
    assert priority_class(p.queued()["r:0"]) is Priority.PAUSED


def test_resync_rebuilds_the_mirror_from_the_queue() -> None:
    p = planner()
    p.report(playing(0, 0.0), 0.0)
    fresh = planner()  # a new planning replica: sessions first, then the queue
    fresh.report(playing(0, 0.0), 0.0)
    waiting = {j: pr for j, pr in p.queued().items() if j != "r:3"}
    ops = fresh.resync(waiting, ["r:3"], 0.0)
    assert not ops.submit and not ops.cancel
    assert fresh.segment_state("r", 3) is SegmentState.RUNNING
    assert fresh.queued() == waiting


# --- property: incremental planning is a fixed point of planning everything -----------------


class FakeQueue:
    """Applies the planner's ops and plays workers: claims, completions, failures."""

    def __init__(self) -> None:
        self.waiting: dict[str, float] = {}
        self.running: set[str] = set()

    def apply(self, ops: Ops) -> None:
        for job in ops.submit:
            if job.job_id not in self.running:
                self.waiting[job.job_id] = job.priority
        for job_id, priority in ops.reprioritise:
            if job_id in self.waiting:
                self.waiting[job_id] = priority
        for job_id in ops.cancel:
            self.waiting.pop(job_id, None)


def plan_everything(p: Planner, now: float) -> Plan:
    """What planning every render from scratch would do to the planner's queue now."""
    renders = {rid: r.view for rid, r in p.renders.items()}
    return p.policy.plan(now, list(p.sessions.values()), renders, p.queued(), p.cost, p.workers)


def _event(rng: random.Random, p: Planner, q: FakeQueue, now: float) -> Ops:
    kind = rng.choice(["report", "report", "leave", "request", "unrequest", "work", "work"])
    render = rng.choice(sorted(p.renders))
    sid = f"s{rng.randint(0, 5)}"
    if kind == "report":
        frames = p.renders[render].info.frames
        s = Session(
            sid, render, rng.randrange(frames), rng.random() < 0.7, rng.choice([0.5, 1, 2]), now
        )
        return p.report(s, now)
    if kind == "leave":
        return p.leave(sid, now)
    k = rng.randrange(p.renders[render].info.segments)
    if kind == "request":
        return p.request(render, k, f"q{k}", now)
    if kind == "unrequest":
        return p.unrequest(render, k, f"q{k}", now)
    if q.running and rng.random() < 0.5:  # a worker finishes
        job = rng.choice(sorted(q.running))
        q.running.discard(job)
        if rng.random() < 0.1:
            return p.changed(job, JobState.FAILED, now, error="boom")
        return p.changed(job, JobState.DONE, now, {"frames": S, "seconds": 0.1})
    if q.waiting:  # a worker claims the most urgent
        job = min(q.waiting, key=lambda j: (q.waiting[j], j))
        del q.waiting[job]
        q.running.add(job)
        return p.changed(job, JobState.RUNNING, now)
    return Ops()


@pytest.mark.parametrize("name", ["deadline", "on-demand", "sequential"])
@pytest.mark.parametrize("seed", range(12))
def test_incremental_planning_matches_planning_everything(name: str, seed: int) -> None:
    rng = random.Random(seed)
    cost = CostModel(prior=rng.choice([1e-4, 0.02, 0.2]))
    workers = rng.choice([0, 1, 4])
    p = Planner(get_policy(name), cost, share_tolerance=0.0)  # exact: every share move counts
    for r in "abc":
        p.add_render(info(r, rng.randint(1, 60)))
    q = FakeQueue()
    q.apply(p.set_workers(workers, 0.0))
    now = 100.0  # one instant: deadlines that depend on "now" compare equal
    for _ in range(150):
        q.apply(_event(rng, p, q, now))
        assert set(q.waiting) == set(p.queued())
        everything = plan_everything(p, now)
        assert not everything.submit and not everything.cancel, (everything, seed)
        assert not everything.reprioritise
    for job_id, priority in p.queued().items():
        assert parse_job_id(job_id)[0] in p.renders
        assert 0 <= priority < 4 * CLASS_SPAN


@pytest.mark.parametrize("seed", range(10))
def test_steady_viewers_are_replanned_in_place_and_exactly(seed: int) -> None:
    """Viewers play in real time and report as they go; workers keep up. After every event
    no render misses or keeps a job it should not, and the render the event touched has every
    priority within twice the tolerance of planning it from scratch (the tolerance a full
    replan leaves alone, plus the drift a steady viewer's reports may accumulate before its
    render is replanned in full)."""
    rng = random.Random(seed)
    p = Planner(DeadlinePolicy(), CostModel(prior=0.01))
    for r in "ab":
        p.add_render(info(r, 80))
    q = FakeQueue()
    q.apply(p.set_workers(50, 0.0))
    now = 100.0
    sessions: dict[str, Session] = {}
    for i in range(4):
        s = playing(rng.randrange(40 * S), now, rng.choice("ab"), f"s{i}")
        sessions[s.id] = s
        q.apply(p.report(s, now))
    in_place = 0
    replan = p._replan

    def counting(r: object, now: float, ops: Ops, only: set[int] | None = None) -> None:
        nonlocal in_place
        in_place += only is not None
        replan(r, now, ops, only)  # type: ignore[arg-type]

    p._replan = counting  # type: ignore[method-assign]
    for _ in range(400):
        now += rng.uniform(0.01, 0.3)
        roll = rng.random()
        if roll < 0.5:  # a report where the viewer really is
            s = sessions[rng.choice(sorted(sessions))]
            at = min(int(s.playhead + (now - s.reported_at) * FPS), 80 * S - 1)
            s = sessions[s.id] = playing(at, now, s.render, s.id)
            touched = s.render
            q.apply(p.report(s, now))
        elif roll < 0.55:  # a seek
            s = sessions[rng.choice(sorted(sessions))]
            s = sessions[s.id] = playing(rng.randrange(80 * S), now, s.render, s.id)
            touched = s.render
            q.apply(p.report(s, now))
        elif q.running and roll < 0.8:
            job = rng.choice(sorted(q.running))
            q.running.discard(job)
            touched = parse_job_id(job)[0]
            q.apply(p.changed(job, JobState.DONE, now, {"frames": S, "seconds": 0.2}))
        elif q.waiting:
            job = min(q.waiting, key=lambda j: (q.waiting[j], j))
            del q.waiting[job]
            q.running.add(job)
            touched = ""  # a claim moves no need; what moves with the clock waits for a tick
            q.apply(p.changed(job, JobState.RUNNING, now))
        else:
            continue
        everything = plan_everything(p, now)
        assert not everything.submit and not everything.cancel, (everything, seed)
        queued = p.queued()
        tolerance = 2 * p.policy.tolerance_s + 1e-9
        moved = [
            (job, priority, queued[job])
            for job, priority in everything.reprioritise
            if parse_job_id(job)[0] == touched and abs(priority - queued[job]) > tolerance
        ]
        assert not moved, (moved, seed)
    assert in_place > 10  # steady reports were replanned in place


def _random_ops(rng: random.Random, jobs: list[str]) -> Ops:
    ops = Ops()
    for job_id in rng.sample(jobs, rng.randint(0, len(jobs))):
        roll = rng.random()
        if roll < 0.4:
            render, k = parse_job_id(job_id)
            ops.submit.append(
                JobSpec(render, k, info(render).frame_range(k), rng.random(), Priority.PLAYING)
            )
        elif roll < 0.7:
            ops.reprioritise.append((job_id, rng.random()))
        else:
            ops.cancel.append(job_id)
    return ops


def _apply_in_order(queue: dict[str, float], ops: Ops, order: random.Random | None) -> None:
    """Apply ops like a queue does, in list order or (``order``) shuffled."""
    steps: list[tuple[str, str, float]] = [("submit", j.job_id, j.priority) for j in ops.submit]
    steps += [("move", j, p) for j, p in ops.reprioritise]
    steps += [("cancel", j, 0.0) for j in ops.cancel]
    if order is not None:
        order.shuffle(steps)
    for what, job_id, priority in steps:
        if what == "submit" or (what == "move" and job_id in queue):
            queue[job_id] = priority
        elif what == "cancel":
            queue.pop(job_id, None)


@pytest.mark.parametrize("seed", range(30))
def test_merged_ops_mean_the_same_in_any_order(seed: int) -> None:
    """Two plans merged into one leave the queue as applying one after the other would,
    whatever order the queue applies the merged operations in."""
    rng = random.Random(seed)
    jobs = [f"r:{k}" for k in range(8)]
    start = {j: rng.random() for j in rng.sample(jobs, 4)}
    first, second = _random_ops(rng, jobs), _random_ops(rng, jobs)
    # a plan submits only what is not queued, and moves or cancels only what is
    first.submit = [j for j in first.submit if j.job_id not in start]
    first.reprioritise = [(j, p) for j, p in first.reprioritise if j in start]
    first.cancel = [j for j in first.cancel if j in start]
    middle = dict(start)
    _apply_in_order(middle, first, None)
    second.submit = [j for j in second.submit if j.job_id not in middle]
    second.reprioritise = [(j, p) for j, p in second.reprioritise if j in middle]
    second.cancel = [j for j in second.cancel if j in middle]
    expected = dict(middle)
    _apply_in_order(expected, second, None)
    merged = Ops(list(first.submit), list(first.reprioritise), list(first.cancel))
    merged.extend(second)
    for shuffle in range(5):
        got = dict(start)
        _apply_in_order(got, merged, random.Random(shuffle))
        assert got == expected
