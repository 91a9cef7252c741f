"""The demand signal the autoscaler scales on: it rises with playing viewers and with the
cost of their effects, falls when they pause or leave, counts late work, projects a rising
load ahead, routes each effect's load to its device class, and is published so that every
replica answers the same."""

from __future__ import annotations

import pytest

from playhead.queue import JobState
from playhead.scheduler import CostModel, DeadlinePolicy, RenderInfo, Session
from playhead.scheduler.capacity import ClassDemand, ScalingRule, Trend, demand
from playhead.scheduler.planner import Planner

FPS, S = 25.0, 25
CLASS = {"light": "cuda", "heavy": "cuda", "edges": "cpu"}.__getitem__
COSTS = {"light": 0.004, "heavy": 0.04, "edges": 0.01}  # seconds per frame, measured


def _planner(now: float = 1000.0) -> Planner:
    cost = CostModel()
    for effect, spf in COSTS.items():
        cost.update(effect, spf * S, S)
    p = Planner(DeadlinePolicy(), cost)
    p.set_workers(1000, now)  # plenty: no overload, no fair shares
    return p


def _watch(p: Planner, n: int, effect: str, now: float, playing: bool = True) -> list[str]:
    ids = []
    for i in range(n):
        render = f"{effect}-{i}-{len(p.renders)}"
        p.add_render(RenderInfo(render, FPS, S, 600 * S, effect))
        sid = f"s-{render}"
        p.report(Session(sid, render, 0, playing, 1.0, now), now)
        ids.append(sid)
    return ids


def _cuda(p: Planner, now: float, rule: ScalingRule | None = None) -> ClassDemand:
    return demand(p, now, CLASS, rule or ScalingRule(), ("cpu", "cuda"))["cuda"]


def test_rises_with_viewers_and_with_the_cost_of_their_effect() -> None:
    now = 1000.0
    p = _planner(now)
    assert _cuda(p, now).desired_workers == 0
    _watch(p, 10, "light", now)
    ten = _cuda(p, now)
    # 10 viewers x 25 fps x 4 ms = 1 worker-second per second
    assert ten.playing == pytest.approx(1.0)
    _watch(p, 10, "light", now)
    twenty = _cuda(p, now)
    assert twenty.playing == pytest.approx(2 * ten.playing)
    _watch(p, 10, "heavy", now)  # ten times the cost per frame
    heavy = _cuda(p, now)
    assert heavy.playing == pytest.approx(twenty.playing + 10 * ten.playing)
    assert ten.desired_workers < twenty.desired_workers < heavy.desired_workers


def test_falls_when_viewers_pause_and_when_they_leave() -> None:
    now = 1000.0
    p = _planner(now)
    sessions = _watch(p, 40, "heavy", now)
    playing = _cuda(p, now).desired_workers
    for sid in sessions[:20]:  # half of them pause where they are
        s = p.sessions[sid]
        p.report(Session(sid, s.render, s.playhead, False, 1.0, now + 1), now + 1)
    paused = _cuda(p, now + 1).desired_workers
    for sid in sessions:
        p.leave(sid, now + 2)
    gone = _cuda(p, now + 2)
    assert playing > paused > gone.desired_workers == 0
    assert gone.playing == 0 and gone.low_slack_jobs == 0


def test_each_effect_counts_for_its_own_device_class() -> None:
    now = 1000.0
    p = _planner(now)
    _watch(p, 10, "edges", now)
    both = demand(p, now, CLASS, ScalingRule(), ("cpu", "cuda"))
    assert both["cpu"].desired_workers > 0
    assert both["cuda"] == ClassDemand()  # listed, and idle


def test_work_late_for_its_deadline_asks_for_more_workers_the_longer_it_waits() -> None:
    now = 1000.0
    p = _planner(now)
    _watch(p, 20, "heavy", now)
    on_time = _cuda(p, now)
    # nobody claimed anything: the first segments' deadlines pass
    later = now + 20
    late = _cuda(p, later)
    assert on_time.low_slack_jobs < late.low_slack_jobs
    assert late.urgent > on_time.urgent
    assert late.desired_workers > on_time.desired_workers


def test_paused_and_export_backlog_is_spread_over_the_backlog_target() -> None:
    now = 1000.0
    p = _planner(now)
    p.add_render(RenderInfo("exp", FPS, S, 120 * S, "heavy"))
    p.export("exp", "e1", now, now)
    d = _cuda(p, now)
    # 120 segments x 25 frames x 40 ms = 120 worker-seconds, to be done in backlog_s
    assert d.backlog == pytest.approx(120.0)
    assert d.desired_workers == 1
    quick = _cuda(p, now, ScalingRule(backlog_s=10.0))
    assert quick.desired_workers == 12


def test_a_rising_load_is_projected_a_worker_start_ahead_and_a_falling_one_is_not() -> None:
    rule = ScalingRule(lead_s=60.0, trend_s=120.0)
    rising, falling = Trend(), Trend()
    for t in range(0, 121, 10):  # +0.1 worker-s/s every second, and -0.1
        if t:  # the work done in the last 10 s is what the viewers played: a ratio of 1
            rising.worked("cuda", float(t), 10 * (1.0 + (t - 5) / 10))
            falling.worked("cuda", float(t), 10 * (13.0 - (t - 5) / 10))
        up = rising.project("cuda", float(t), 1.0 + t / 10, rule)
        down = falling.project("cuda", float(t), 13.0 - t / 10, rule)
    assert up == pytest.approx(13.0 + 0.1 * 60)
    assert down == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("spent", "ratio"),
    [(30.0, 1.5), (10.0, 0.5), (1.0, Trend.MIN_RATIO), (500.0, Trend.MAX_RATIO)],
)
def test_the_measured_work_ratio_scales_the_playing_load(spent: float, ratio: float) -> None:
    """Seeks cost more than playing straight through; replays of cached segments cost less."""
    rule = ScalingRule(trend_s=120.0, lead_s=0.0)
    trend = Trend()
    for t in range(0, 241, 10):  # a steady load of 2 worker-s/s, and ``spent`` every 10 s
        projected = trend.project("cuda", float(t), 2.0, rule)
        trend.worked("cuda", float(t), spent)
    assert projected == pytest.approx(ratio * 2.0, rel=0.1)


def test_a_finished_job_is_no_longer_demand() -> None:
    now = 1000.0
    p = _planner(now)
    p.add_render(RenderInfo("exp", FPS, S, 4 * S, "heavy"))
    p.export("exp", "e1", now, now)
    before = _cuda(p, now).backlog
    for k in range(4):
        p.changed(f"exp:{k}", JobState.RUNNING, now)
        p.changed(f"exp:{k}", JobState.DONE, now + 1, {"frames": S, "seconds": 1.0})
    assert before > 0 and _cuda(p, now + 1).backlog == 0
