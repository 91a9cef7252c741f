"""``playhead simulate``: one simulated day per scaling strategy, compared in one table.

The strategies run in parallel processes (each is one event loop, on one core); each meets the
same viewers. The fixed fleet is sized for the peak: every viewer of the peak playing at
once, at the scaling rule's utilisation.
"""

from __future__ import annotations

import asyncio
import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from playhead.scheduler.capacity import ScalingRule
from playhead.simulate.hpa import Strategy
from playhead.simulate.results import Results
from playhead.simulate.scenario import Scenario
from playhead.simulate.world import World


def peak_fleet(scenario: Scenario, utilisation: float = ScalingRule.utilisation) -> int:
    """Workers for the peak: every peak viewer playing, at the rule's utilisation."""
    return math.ceil(scenario.peak_viewers * scenario.mean_load() / utilisation)


def strategies(
    scenario: Scenario, queue_targets: tuple[float, ...] = (5.0, 10.0, 20.0)
) -> list[Strategy]:
    return [
        Strategy("demand"),
        *(Strategy("queue", target=t) for t in queue_targets),
        Strategy("fixed", fixed=peak_fleet(scenario)),
    ]


def simulate(scenario: Scenario, strategy: Strategy) -> Results:
    return asyncio.run(World(scenario, strategy).run())


def compare(scenario: Scenario, chosen: list[Strategy], processes: int = 2) -> list[Results]:
    with ProcessPoolExecutor(max(1, min(processes, len(chosen)))) as pool:
        return list(pool.map(simulate, [scenario] * len(chosen), chosen))


def table(results: list[Results]) -> str:
    rows = [
        "| strategy | stalled s per viewer-hour | stalls | seek p50 s | seek p95 s "
        "| deadline misses "
        "| worker-hours | utilisation | peak workers |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        s = r.summary()
        rows.append(
            f"| {s['strategy']} | {s['stall_ratio'] * 3600:.2f} | {s['stalls']} "
            f"| {s['seek_p50_s']:.2f} | {s['seek_p95_s']:.2f} "
            f"| {s['deadline_miss_ratio']:.3f} | {s['worker_hours']:.1f} "
            f"| {s['utilisation']:.2f} | {s['peak_workers']} |"
        )
    return "\n".join(rows)


def plot(results: list[Results], path: Path, title: str) -> None:
    """Viewers, workers and stalled time over the day, one line per strategy (matplotlib, a
    dev extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    first = results[0].series
    top.plot([p["t"] / 3600 for p in first], [p["viewers"] for p in first], color="black")
    top.set_ylabel("viewers")
    top.set_title(title)
    for r in results:
        hours = [p["t"] / 3600 for p in r.series]
        middle.plot(hours, [p["workers"] for p in r.series], label=r.strategy)
        bottom.plot(hours, [p["stall_s"] / 60 for p in r.series], label=r.strategy)
    middle.set_ylabel("workers (billed)")
    bottom.set_ylabel("stalled, minutes so far")
    bottom.set_xlabel("simulated hours")
    middle.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(args: Any) -> int:
    scenario = Scenario(
        peak_viewers=args.viewers,
        day_s=args.day,
        start_s=args.start,
        preempt_per_hour=args.preempt,
        seed=args.seed,
    )
    chosen = strategies(scenario)
    if args.strategy:
        chosen = [s for s in chosen if s.kind in args.strategy]
    if args.workers is not None:
        chosen = [replace(s, fixed=args.workers) if s.kind == "fixed" else s for s in chosen]
    results = compare(scenario, chosen, args.processes)
    if args.json:
        print(json.dumps([r.summary() for r in results], indent=2))
    else:
        print(
            f"{scenario.peak_viewers} viewers at the peak, a day of {scenario.day_s:.0f} s, "
            f"workers start in {scenario.start_s:.0f} s, spot preemption "
            f"{scenario.preempt_per_hour:.0%}/hour"
        )
        print(table(results))
        for r in results:
            s = r.summary()
            print(f"  {s['strategy']}: {s['events']:,} events in {s['wall_s']:.0f} s")
    if args.plot:
        plot(results, args.plot, f"{scenario.peak_viewers} viewers at the peak")
    return 0
