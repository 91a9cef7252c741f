"""Scheduler policies with a driven clock: plain data in, queue operations out, no sleeps.

The queue is a dict of job id → priority with `apply` and `claim`: the smallest fake that
behaves like the real WorkQueue for what a plan does to it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import pytest

from playhead.scheduler import (
    CLASS_SPAN,
    POLICIES,
    SETTLED,
    CostModel,
    DeadlinePolicy,
    OnDemandPolicy,
    Plan,
    Policy,
    Priority,
    RenderInfo,
    RenderState,
    SegmentState,
    SequentialPolicy,
    Session,
    encode_priority,
    fair_shares,
    get_policy,
    parse_job_id,
    priority_class,
    priority_key,
    segment_job_id,
)

FPS = 30.0
S = 30  # frames per segment: one second of media
CHEAP = CostModel(prior=1e-4)  # 3 ms a segment: never overloaded
READY, RUNNING, FAILED = SegmentState.READY, SegmentState.RUNNING, SegmentState.FAILED


def render(
    id: str = "r",
    segments: int = 100,
    effect: str = "cost",
    states: Mapping[int, SegmentState] | None = None,
    urgent: Mapping[int, float] | None = None,
    export: float | None = None,
    requested: Mapping[int, float] | None = None,
    running_since: Mapping[int, float] | None = None,
) -> RenderState:
    return RenderState(
        info=RenderInfo(id, FPS, S, segments * S, effect),
        states=dict(states or {}),
        running_since=dict(running_since or {}),
        urgent=dict(urgent or {}),
        requested=dict(requested or {}),
        export_requested_at=export,
    )


def plan(
    policy: Policy,
    now: float,
    sessions: Sequence[Session],
    renders: Sequence[RenderState],
    queued: Mapping[str, float] | None = None,
    cost: CostModel = CHEAP,
    workers: int = 4,
) -> Plan:
    by_id = {r.info.id: r for r in renders}
    return policy.plan(now, sessions, by_id, dict(queued or {}), cost, workers)


def apply(queue: Mapping[str, float], p: Plan) -> dict[str, float]:
    out = dict(queue)
    for job in p.submit:
        assert job.job_id not in out, f"{job.job_id} submitted twice"
        out[job.job_id] = job.priority
    for job_id, priority in p.reprioritise:
        assert job_id in out
        out[job_id] = priority
    for job_id in p.cancel:
        del out[job_id]
    return out


def claim(queue: dict[str, float]) -> str:
    job_id = min(queue, key=lambda j: (queue[j], j))
    del queue[job_id]
    return job_id


def keys(p: Plan, render_id: str = "r") -> dict[int, float]:
    """Segment → key within its class, for one render's submitted jobs."""
    return {j.segment: priority_key(j.priority) for j in p.submit if j.render == render_id}


def playing(at: int, t: float, render_id: str = "r", rate: float = 1.0, id: str = "s") -> Session:
    return Session(id, render_id, at, playing=True, rate=rate, reported_at=t)


def paused(at: int, t: float, render_id: str = "r", id: str = "p") -> Session:
    return Session(id, render_id, at, playing=False, reported_at=t)


# --- priority encoding ----------------------------------------------------------------------


def test_priority_sorts_by_class_then_key() -> None:
    assert encode_priority(Priority.URGENT, CLASS_SPAN * 2) < encode_priority(Priority.PLAYING, 0)
    assert encode_priority(Priority.PLAYING, 9e9) < encode_priority(Priority.PAUSED, 0)
    p = encode_priority(Priority.EXPORT, 1.7e9 + 0.25)
    assert priority_class(p) is Priority.EXPORT
    assert priority_key(p) == pytest.approx(1.7e9 + 0.25, abs=1e-5)
    assert priority_key(encode_priority(Priority.PAUSED, -5.0)) == 0.0
    with pytest.raises(ValueError, match="finite"):
        encode_priority(Priority.PLAYING, math.inf)


def test_job_ids_are_deterministic_and_parse_back() -> None:
    assert segment_job_id("a:b", 7) == "a:b:7"
    assert parse_job_id("a:b:7") == ("a:b", 7)
    for bad in ("nope", ":3", "r:x", "r:-1"):
        with pytest.raises(ValueError):
            parse_job_id(bad)


def test_inputs_are_validated_when_built() -> None:
    with pytest.raises(ValueError, match="rate"):
        Session("s", "r", 0, playing=True, rate=-1.0)
    with pytest.raises(ValueError, match="playhead"):
        Session("s", "r", -1, playing=True)
    with pytest.raises(ValueError, match="outside"):
        render(segments=3, urgent={3: 0.0})
    with pytest.raises(ValueError, match="fps"):
        RenderInfo("r", 0.0, S, 90, "cost")


# --- deadline policy --------------------------------------------------------------------------


def test_playing_session_is_served_earliest_deadline_first() -> None:
    p = plan(DeadlinePolicy(), 1000.0, [playing(45, 1000.0)], [render()])
    segs = [j.segment for j in p.submit]
    # 30 s of media from frame 45: frames [45, 945) touch segments 1..31
    assert segs == list(range(1, 32))
    assert all(j.klass is Priority.PLAYING for j in p.submit)
    k = keys(p)
    assert k[1] == 1000.0  # the segment under the playhead is due at the report
    assert k[2] == pytest.approx(1000.0 + (60 - 45) / FPS)
    assert all(k[i] < k[i + 1] for i in range(1, 31))
    assert all(j.deadline == pytest.approx(priority_key(j.priority)) for j in p.submit)


def test_seek_to_80_percent_replans_at_once() -> None:
    r = render(segments=200)
    queue = apply({}, plan(DeadlinePolicy(), 0.0, [playing(0, 0.0)], [r]))
    assert sorted(parse_job_id(j)[1] for j in queue) == list(range(30))
    assert claim(queue) == "r:0" and claim(queue) == "r:1"
    r = render(segments=200, states={0: RUNNING, 1: RUNNING}, running_since={0: 0.1, 1: 0.1})

    seek = playing(int(0.8 * 200 * S), 0.5)  # frame 4800, segment 160
    p = plan(DeadlinePolicy(), 0.5, [seek], [r], queue)
    assert p.submit[0].segment == 160
    assert [j.segment for j in p.submit] == list(range(160, 190))
    assert p.cancel == tuple(sorted(f"r:{k}" for k in range(2, 30)))  # behind the new playhead
    queue = apply(queue, p)
    assert claim(queue) == "r:160"
    assert "r:0" not in p.cancel and "r:1" not in p.cancel  # running ones finish

    # another viewer's segment due at the same moment ties with it, until the server marks
    # the first segment after the seek urgent
    other = render("o", states={0: READY})
    viewers = [seek, playing(S, 0.5, "o", id="o")]
    p = plan(DeadlinePolicy(), 0.5, viewers, [r, other], {})
    assert keys(p, "o")[1] == keys(p)[160] == 0.5
    r_urgent = render(segments=200, states=r.states, urgent={160: 0.5})
    p = plan(DeadlinePolicy(), 0.5, viewers, [r_urgent, other], {})
    assert p.submit[0].job_id == "r:160" and p.submit[0].klass is Priority.URGENT

    # seeking back to segment 150 drops what is now beyond the 30 s horizon
    queue = {f"r:{k}": 0.0 for k in range(161, 190)}
    r = render(segments=200, states={0: READY, 1: READY, 160: RUNNING})
    back = playing(150 * S, 2.0)
    p = plan(DeadlinePolicy(), 2.0, [back], [r], queue)
    assert p.cancel == tuple(f"r:{k}" for k in range(180, 190))
    assert [j.segment for j in p.submit] == list(range(150, 160))
    assert {job_id for job_id, _ in p.reprioritise} == {f"r:{k}" for k in range(161, 180)}


def test_running_jobs_are_never_cancelled() -> None:
    # the queue's snapshot may still list a job the render already reports running
    r = render(states={3: RUNNING})
    queued = {"r:3": 1.0, "r:4": 1.0, "gone:2": 1.0, "not-a-segment-job": 1.0}
    p = plan(DeadlinePolicy(), 0.0, [], [r], queued)
    assert p.cancel == ("gone:2", "r:4")  # nobody needs them; foreign ids are left alone


def test_two_sessions_on_one_render_share_one_job_per_segment() -> None:
    sessions = [playing(0, 10.0, id="a"), playing(5 * S, 10.0, id="b")]
    p = plan(DeadlinePolicy(), 10.0, sessions, [render()])
    segs = [j.segment for j in p.submit]
    assert sorted(segs) == list(range(35)) and len(segs) == len(set(segs))
    k = keys(p)
    assert all(k[i] == 10.0 + i for i in range(5))  # only a needs these
    assert all(k[i] == 10.0 + i - 5 for i in range(5, 35))  # b needs them sooner
    assert p.submit[0].segment == 0 and p.submit[1].segment == 5


def test_paused_sessions_get_a_short_window_at_a_lower_class() -> None:
    p = plan(DeadlinePolicy(), 3.0, [paused(300, 3.0)], [render()])
    assert [j.segment for j in p.submit] == list(range(10, 15))  # 5 s from frame 300
    assert all(j.klass is Priority.PAUSED and j.deadline is None for j in p.submit)
    assert keys(p)[10] == 3.0 and keys(p)[14] == 7.0

    # a playing viewer of another render outranks it; rate 0 counts as paused
    sessions = [paused(300, 3.0), playing(0, 3.0, "o", id="o"), playing(0, 3.0, "z", 0.0, "z")]
    p = plan(DeadlinePolicy(), 3.0, sessions, [render(), render("o"), render("z")])
    worst_playing = max(j.priority for j in p.submit if j.klass is Priority.PLAYING)
    best_paused = min(j.priority for j in p.submit if j.klass is Priority.PAUSED)
    assert worst_playing < best_paused
    assert sorted(j.segment for j in p.submit if j.render == "z") == list(range(5))

    # a paused and a playing viewer of one render: the shared segments are PLAYING
    p = plan(DeadlinePolicy(), 3.0, [paused(0, 3.0), playing(0, 3.0)], [render()])
    assert all(j.klass is Priority.PLAYING for j in p.submit)


def test_double_rate_halves_the_time_to_each_deadline() -> None:
    sessions = [playing(0, 5.0, "a", 1.0, "a"), playing(0, 5.0, "b", 2.0, "b")]
    p = plan(DeadlinePolicy(), 5.0, sessions, [render("a"), render("b")])
    a, b = keys(p, "a"), keys(p, "b")
    assert a.keys() == b.keys() == set(range(30))  # the horizon is media time
    for k in range(30):
        assert b[k] - 5.0 == pytest.approx((a[k] - 5.0) / 2)


def test_urgent_beats_everything_first_come_first_served() -> None:
    r = render(urgent={60: 7.0, 50: 5.0, 0: 1.0}, states={0: READY})
    sessions = [playing(0, 9.0), paused(0, 9.0, "o")]
    p = plan(DeadlinePolicy(), 9.0, sessions, [r, render("o"), render("e", export=0.0)])
    assert [j.job_id for j in p.submit[:2]] == ["r:50", "r:60"]
    assert all(j.klass is Priority.URGENT for j in p.submit[:2])
    assert "r:0" not in {j.job_id for j in p.submit}  # ready: served from the cache
    assert max(j.klass for j in p.submit) is Priority.EXPORT
    assert p.submit[-1].job_id == "e:99"


def test_requests_inside_a_playing_horizon_are_not_urgent() -> None:
    """A player filling its buffer asks 25 s ahead; that must not outrank another viewer's
    next segment. A request outside every horizon (an HLS client, a seek) is urgent."""
    r = render(requested={25: 1.0, 1: 1.0, 90: 2.0})
    p = plan(DeadlinePolicy(), 2.0, [playing(0, 2.0)], [r])
    klass = {j.segment: j.klass for j in p.submit}
    assert klass[25] is Priority.PLAYING
    assert klass[1] is Priority.URGENT and klass[90] is Priority.URGENT
    on_demand = plan(OnDemandPolicy(), 2.0, [playing(0, 2.0)], [r])
    assert [j.segment for j in on_demand.submit] == [1, 25, 90]


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_settled_segments_are_never_submitted(name: str) -> None:
    settled = {0: READY, 1: READY, 2: RUNNING, 3: FAILED, 40: READY}
    r = render(states=settled, urgent={0: 1.0, 2: 1.0, 3: 1.0, 5: 1.0}, export=0.0)
    p = plan(get_policy(name), 2.0, [playing(0, 2.0), paused(40 * S, 2.0)], [r])
    submitted = {j.segment for j in p.submit}
    assert submitted.isdisjoint(settled)
    assert 5 in submitted


def test_steady_playback_does_not_churn_the_queue() -> None:
    queue = apply({}, plan(DeadlinePolicy(), 0.0, [playing(0, 0.0)], [render()]))
    assert claim(queue) == "r:0"
    for t in range(1, 6):  # a report every second; the worker stays a segment ahead
        assert claim(queue) == f"r:{t}"
        r = render(states={k: READY for k in range(t + 1)})
        p = plan(DeadlinePolicy(), t + 0.3, [playing(t * S, float(t))], [r], queue)
        assert [j.segment for j in p.submit] == [29 + t]  # the horizon moves on
        assert p.reprioritise == () and p.cancel == ()
        queue = apply(queue, p)
    assert plan(DeadlinePolicy(), 5.3, [playing(5 * S, 5.0)], [r], queue).is_empty()


def test_a_stalled_session_does_not_drag_its_horizon_into_the_past() -> None:
    # a reported at t=10 and is stuck on segment 0 since; b is on time with 2 s of lead
    stuck = playing(0, 10.0, "a", id="a")
    on_time = playing(0, 20.0, "b", id="b")
    renders = [render("a"), render("b", states={0: READY, 1: READY})]
    p = plan(DeadlinePolicy(), 20.0, [stuck, on_time], renders)
    a, b = keys(p, "a"), keys(p, "b")
    assert p.submit[0].job_id == "a:0" and a[0] == 10.0  # the one it waits on goes first
    assert all(a[k] == 20.0 + k for k in range(1, 30))  # not 10 + k: it cannot be past 0
    assert b[2] == 22.0 and b[2] < a[3]
    assert {j.job_id: j.deadline for j in p.submit}["a:5"] == 25.0


def test_overload_holds_the_greedy_session_to_its_fair_share() -> None:
    cost = CostModel(per_frame={"cheap": 0.005, "slow": 0.1})  # 0.15 s and 3 s a segment
    sessions = [playing(0, 0.0, "a", id="a"), playing(0, 0.0, "h", rate=2.0, id="h")]
    renders = [render("a", effect="cheap"), render("h", effect="slow")]
    # a needs 0.15 worker, h needs 6: two workers cannot keep up, h gets what a leaves
    share = 2 - 0.15
    assert fair_shares([0.15, 6.0], 2) == [None, pytest.approx(share)]

    p = plan(DeadlinePolicy(), 0.0, sessions, renders, cost=cost, workers=2)
    a, h = keys(p, "a"), keys(p, "h")
    assert a == {k: float(k) for k in range(30)}  # within its share: exact EDF, full horizon
    # h: 15 s of wall clock at 2x, 3 s a segment at 1.85 workers: 9 segments, then cut
    assert sorted(h) == list(range(9))
    for k in range(9):
        assert h[k] == pytest.approx(max(k / 2, 3 * (k + 1) / share))
        assert {j.job_id: j.deadline for j in p.submit}[f"h:{k}"] == pytest.approx(k / 2)
    assert a[1] < h[0]  # plain EDF would have put h:0..h:2 (due at 0, 0.5, 1) first

    # capacity unknown: plain EDF, full horizons
    p = plan(DeadlinePolicy(), 0.0, sessions, renders, cost=cost, workers=0)
    assert keys(p, "h") == {k: k / 2 for k in range(30)}


def test_overload_of_equals_keeps_everyones_nearest_segments_first() -> None:
    cost = CostModel(per_frame={"slow": 0.1})  # 3 s a segment, 3 workers for 3 sessions each
    renders = [render(n, effect="slow", states={0: RUNNING}, running_since={0: 0.0}) for n in "xyz"]
    sessions = [playing(0, 0.0, n, id=n) for n in "xyz"]
    p = plan(DeadlinePolicy(), 1.0, sessions, renders, cost=cost, workers=3)
    for n in "xyz":
        # share 1 worker: 2 s left on the running segment, then 3 s each; cut at 30 s of work
        assert keys(p, n) == {k: pytest.approx(1.0 + 2 + 3 * k) for k in range(1, 10)}
    order = [j.segment for j in p.submit]
    assert order[:3] == [1, 1, 1] and order[3:6] == [2, 2, 2]  # round robin, not one at a time

    # however slow, every playing session keeps its nearest min_segments
    hopeless = CostModel(per_frame={"slow": 10.0})
    p = plan(DeadlinePolicy(), 1.0, sessions, renders, cost=hopeless, workers=3)
    assert sorted(j.job_id for j in p.submit) == sorted(f"{n}:{k}" for n in "xyz" for k in (1, 2))


def test_fair_shares_water_fill() -> None:
    assert fair_shares([1.0, 1.0], 4) == [None, None]
    assert fair_shares([0.5, 3.0, 3.0], 2) == [None, 0.75, 0.75]
    assert fair_shares([4.0, 1.0, 0.1], 3) == [pytest.approx(1.9), None, None]
    assert fair_shares([5.0], 0) == [None]
    assert fair_shares([], 1) == []


# --- baselines --------------------------------------------------------------------------------


def test_on_demand_renders_only_requests_first_come_first_served() -> None:
    assert plan(OnDemandPolicy(), 1.0, [playing(0, 1.0)], [render()]).is_empty()
    r = render(urgent={7: 3.0, 2: 5.0})
    p = plan(OnDemandPolicy(), 6.0, [playing(0, 6.0)], [r], {"r:9": 1.0, "r:2": 1.0})
    assert [j.job_id for j in p.submit] == ["r:7"]
    assert p.reprioritise == (("r:2", encode_priority(Priority.URGENT, 5.0)),)
    assert p.cancel == ("r:9",)  # its request is gone


def test_sequential_renders_from_frame_zero_like_a_batch_job() -> None:
    sessions = [playing(80 * S, 0.0), paused(0, 0.0, "o")]
    p = plan(SequentialPolicy(), 0.0, sessions, [render(), render("o", segments=3)])
    assert [j.job_id for j in p.submit[:4]] == ["o:0", "r:0", "o:1", "r:1"]
    assert [j.segment for j in p.submit if j.render == "r"] == list(range(100))
    p = plan(SequentialPolicy(), 0.0, [], [render()], {"r:5": 5.0 + CLASS_SPAN})
    assert p.cancel == ("r:5",) and p.submit == ()  # nobody watches it any more


def test_policies_are_registered_by_name() -> None:
    assert set(POLICIES) == {"deadline", "on-demand", "sequential"}
    assert isinstance(get_policy("deadline"), DeadlinePolicy)
    with pytest.raises(ValueError, match="known policies: deadline"):
        get_policy("fastest")


# --- cost model -------------------------------------------------------------------------------


def test_cost_model_ewma_converges() -> None:
    cost = CostModel(prior=0.05, alpha=0.2)
    assert cost.estimate("person", 30) == pytest.approx(1.5)
    cost.update("person", seconds=3.0, frames=30)  # the first sample replaces the prior
    assert cost.seconds_per_frame("person") == pytest.approx(0.1)
    for _ in range(60):
        cost.update("person", seconds=0.6, frames=30)
    assert cost.seconds_per_frame("person") == pytest.approx(0.02, rel=1e-4)
    assert cost.samples["person"] == 61
    assert cost.seconds_per_frame("edges") == 0.05
    with pytest.raises(ValueError):
        cost.update("person", seconds=1.0, frames=0)
    with pytest.raises(ValueError):
        CostModel(alpha=0.0)


# --- property: nothing needed is missing, nothing unneeded is queued --------------------------


def _needed(sessions: Sequence[Session], renders: Mapping[str, RenderState]) -> set[str]:
    """What the deadline policy must cover when it is not overloaded, from first principles."""
    out: set[str] = set()

    def add(r: RenderState, k: int) -> None:
        if r.state(k) not in SETTLED:
            out.add(segment_job_id(r.info.id, k))

    for s in sessions:
        r = renders.get(s.render)
        if r is None:
            continue
        at = min(s.playhead, r.info.frames - 1)
        window = math.ceil((30.0 if s.moving else 5.0) * FPS)
        for k in range(at // S, (min(at + window, r.info.frames) - 1) // S + 1):
            add(r, k)
    for r in renders.values():
        for k in r.urgent:
            add(r, k)
        if r.export_requested_at is not None:
            for k in range(r.info.segments):
                add(r, k)
    return out


def _random_world(
    rng: random.Random,
) -> tuple[list[Session], dict[str, RenderState], dict[str, float]]:
    renders: dict[str, RenderState] = {}
    for name in "abc":
        n = rng.randint(1, 70)
        states = {k: rng.choice(list(SegmentState)) for k in rng.sample(range(n), n // 2)}
        renders[name] = render(
            name,
            n,
            states=states,
            running_since={k: 0.0 for k, v in states.items() if v is RUNNING},
            urgent={k: rng.uniform(0, 10) for k in rng.sample(range(n), min(n, 3))},
            export=rng.choice([None, None, 1.0]),
        )
    sessions = [
        Session(
            f"s{i}",
            rng.choice("abcd"),  # d: a render the server no longer passes
            rng.randint(0, 2500),
            playing=rng.random() < 0.6,
            rate=rng.choice([0.0, 0.5, 1.0, 2.0]),
            reported_at=rng.uniform(0, 10),
        )
        for i in range(rng.randint(0, 6))
    ]
    every = [segment_job_id(n, k) for n, r in renders.items() for k in range(r.info.segments)]
    queued = {j: rng.uniform(0, 4 * CLASS_SPAN) for j in rng.sample(every, len(every) // 3)}
    queued["d:1"] = 0.0
    return sessions, renders, queued


@pytest.mark.parametrize("seed", range(40))
def test_every_needed_segment_is_covered_and_nothing_else(seed: int) -> None:
    rng = random.Random(seed)
    sessions, renders, queued = _random_world(rng)
    now = 10.0
    p = DeadlinePolicy().plan(now, sessions, renders, queued, CHEAP, 8)
    needed = _needed(sessions, renders)
    submitted = [j.job_id for j in p.submit]
    cancelled = set(p.cancel)

    assert len(submitted) == len(set(submitted))
    assert set(submitted) <= needed and not set(submitted) & queued.keys()
    assert needed <= set(submitted) | (queued.keys() - cancelled)
    assert cancelled <= queued.keys() and not cancelled & needed
    for job_id in queued.keys() - needed:  # unneeded: cancelled unless it is running
        render_id, k = parse_job_id(job_id)
        running = render_id in renders and renders[render_id].state(k) is RUNNING
        assert (job_id in cancelled) != running
    assert {j for j, _ in p.reprioritise} <= queued.keys() & needed
    assert all(priority_class(j.priority) is j.klass for j in p.submit)

    # planning again on the queue it produced changes nothing
    again = DeadlinePolicy().plan(now, sessions, renders, apply(queued, p), CHEAP, 8)
    assert again.is_empty()

    # overloaded (1 s a frame, one worker): horizons shrink, the nearest two segments stay
    heavy = DeadlinePolicy().plan(now, sessions, renders, queued, CostModel(prior=1.0), 1)
    covered = {j.job_id for j in heavy.submit} | (queued.keys() - set(heavy.cancel))
    assert covered <= needed | queued.keys()
    for s in sessions:
        r = renders.get(s.render)
        if r is None or not s.moving:
            continue
        at = min(s.playhead, r.info.frames - 1)
        last = (min(at + 30 * S, r.info.frames) - 1) // S
        ahead = [k for k in range(at // S, last + 1) if r.state(k) not in SETTLED]
        assert {segment_job_id(s.render, k) for k in ahead[:2]} <= covered
