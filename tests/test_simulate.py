"""The scale simulator: the autoscaler behaves as the HPA does (and as deploy/ configures it),
a day is reproducible and every strategy meets the same viewers, workers start late and
spot workers vanish without losing work, and the simulated fleet is the real planner and the
real queue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from playhead.queue import MemoryQueue
from playhead.scheduler.planner import Planner
from playhead.simulate import run
from playhead.simulate.hpa import Autoscaler, Behaviour, Strategy
from playhead.simulate.scenario import Scenario, script
from playhead.simulate.world import LOW_SLACK_TARGET, World

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SMALL = Scenario(
    peak_viewers=12, day_s=240.0, start_s=20.0, session_s=120.0, clip_s=(30, 90), warmup_s=20.0
)


def _simulate(scenario: Scenario, strategy: Strategy) -> tuple[World, dict[str, Any]]:
    world = World(scenario, strategy)
    return world, asyncio.run(world.run()).summary()


# ---- the autoscaler --------------------------------------------------------------------------


def test_scale_up_is_immediate_but_rate_limited_per_period() -> None:
    hpa = Autoscaler(Behaviour(min_replicas=1, up_percent=100, up_pods=4), replicas=2)
    assert hpa.poll(0.0, [(50.0, 1.0)]) == 6  # max(2 x 2, 2 + 4)
    assert hpa.poll(5.0, [(50.0, 1.0)]) == 6  # the same 15 s period: no more
    assert hpa.poll(16.0, [(50.0, 1.0)]) == 12  # a new period: doubled again


def test_scale_down_waits_for_the_window_then_goes_slowly() -> None:
    b = Behaviour(min_replicas=1, down_window_s=300, down_percent=10, down_period_s=60)
    hpa = Autoscaler(b, replicas=100)
    hpa.poll(0.0, [(100.0, 1.0)])
    assert hpa.poll(100.0, [(10.0, 1.0)]) == 100  # the window still holds 100
    assert hpa.poll(301.0, [(10.0, 1.0)]) == 90  # then 10 %
    assert hpa.poll(320.0, [(10.0, 1.0)]) == 90  # once a minute
    assert hpa.poll(362.0, [(10.0, 1.0)]) == 81


def test_the_largest_trigger_wins_and_small_changes_are_tolerated() -> None:
    hpa = Autoscaler(Behaviour(), replicas=10)
    assert hpa.poll(0.0, [(10.5, 1.0)]) == 10  # within 10 %
    assert hpa.poll(1.0, [(3.0, 1.0), (150.0, 10.0)]) == 15  # the safety net decides


def test_the_simulated_autoscaler_is_configured_as_deploy_configures_keda() -> None:
    docs = [d for d in yaml.safe_load_all((DEPLOY / "keda.yaml").read_text()) if d]
    b = Behaviour()
    for so in docs:
        spec = so["spec"]
        behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
        up = {p["type"]: p for p in behavior["scaleUp"]["policies"]}
        down = {p["type"]: p for p in behavior["scaleDown"]["policies"]}
        assert spec["pollingInterval"] == b.poll_s
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
        assert (up["Percent"]["value"], up["Percent"]["periodSeconds"]) == (
            b.up_percent,
            b.up_period_s,
        )
        assert (up["Pods"]["value"], up["Pods"]["periodSeconds"]) == (b.up_pods, b.up_period_s)
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] == b.down_window_s
        assert (down["Percent"]["value"], down["Percent"]["periodSeconds"]) == (
            b.down_percent,
            b.down_period_s,
        )
        targets = {
            t["metadata"]["valueLocation"].rsplit(".", 1)[1]: float(t["metadata"]["targetValue"])
            for t in spec["triggers"]
        }
        assert targets == {"desired_workers": 1.0, "low_slack_jobs": LOW_SLACK_TARGET}


# ---- the simulated day -----------------------------------------------------------------------


def test_viewers_scripts_do_not_depend_on_the_strategy_and_follow_the_day() -> None:
    assert script(SMALL, 7) == script(SMALL, 7)
    assert script(SMALL, 7) != script(SMALL, 8)
    day = Scenario(peak_viewers=1000)
    curve = [day.concurrent(t) for t in range(0, int(day.day_s), 60)]
    assert min(curve) == pytest.approx(100, rel=0.05)  # the night
    assert max(curve) == pytest.approx(1000, rel=0.01)  # the evening peak


def test_a_day_is_reproducible_and_uses_the_real_planner_and_queue() -> None:
    world, first = _simulate(SMALL, Strategy("demand"))
    _, again = _simulate(SMALL, Strategy("demand"))
    assert isinstance(world.planner, Planner)
    assert all(isinstance(q, MemoryQueue) for q in world.queues.values())
    assert first["jobs"] > 100 and first["viewers"] > 10
    keys = ("viewers", "jobs", "stalls", "worker_hours", "peak_workers")
    assert {k: first[k] for k in keys} == {k: again[k] for k in keys}


def test_every_strategy_meets_the_same_viewers_and_a_short_fleet_stalls() -> None:
    _, demand = _simulate(SMALL, Strategy("demand"))
    _, tiny = _simulate(SMALL, Strategy("fixed", fixed=1))
    _, big = _simulate(SMALL, Strategy("fixed", fixed=run.peak_fleet(SMALL)))
    assert demand["viewers"] == tiny["viewers"] == big["viewers"]
    assert tiny["stall_ratio"] > big["stall_ratio"]
    assert tiny["worker_hours"] < big["worker_hours"]
    assert tiny["utilisation"] > big["utilisation"]


def test_workers_take_their_start_time_so_a_slow_start_costs_stalls() -> None:
    slow = Scenario(**{**SMALL.__dict__, "start_s": 120.0})
    _, quick = _simulate(SMALL, Strategy("demand"))
    _, late = _simulate(slow, Strategy("demand"))
    assert late["stall_ratio"] > quick["stall_ratio"]


def test_spot_preemption_loses_no_work_and_the_fleet_replaces_the_workers() -> None:
    spot = Scenario(**{**SMALL.__dict__, "preempt_per_hour": 20.0})  # most workers, once
    world, result = _simulate(spot, Strategy("fixed", fixed=4))
    assert result["preempted"] > 0
    stats = [asyncio.run(q.stats()) for q in world.queues.values()]
    assert sum(s["failed"] for s in stats) == 0
    live = [w for w in world.workers.values() if w.state != "gone"]
    assert len(live) == 4  # every preempted pod was replaced


def test_the_comparison_prints_a_table_and_draws_the_day(tmp_path: Path) -> None:
    chosen = [Strategy("demand"), Strategy("fixed", fixed=2)]
    results = run.compare(SMALL, chosen, processes=1)
    text = run.table(results)
    assert "desired_workers" in text and "fixed fleet (2 workers)" in text
    png = tmp_path / "day.png"
    run.plot(results, png, "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
