"""How fast the simulator runs at fleet scale: N concurrent viewers (all there from the start)
and the workers the demand signal gives them, for a short stretch of simulated time.

The simulator drives the real planner, so it runs at the planner's speed per event (see
`benchmarks/planner.py`); this says how many simulated seconds a wall-clock second buys at
10,000 viewers and about 1,000 workers, and so what a day at that scale costs.

    .venv/bin/python benchmarks/simulate_scale.py [--viewers 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio

from playhead.simulate.hpa import Strategy
from playhead.simulate.scenario import Scenario
from playhead.simulate.world import World


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds")
    args = parser.parse_args()
    scenario = Scenario(
        peak_viewers=args.viewers,
        day_s=args.seconds,
        trough=1.0,  # a flat day: every viewer is there from the start
        warmup_s=0.0,
    )
    world = World(scenario, Strategy("demand"))
    r = asyncio.run(world.run()).summary()
    simulated = args.seconds
    print(
        f"{r['viewers']:,} viewers, up to {r['peak_workers']:,} workers, {simulated:.0f} s "
        f"simulated: {r['events']:,} events, {r['jobs']:,} segments rendered, "
        f"in {r['wall_s']:.0f} s of wall time"
    )
    print(
        f"{r['events'] / r['wall_s']:,.0f} events/s; {simulated / r['wall_s']:.3f} simulated "
        f"s per wall s; a day at this scale: {86400 / simulated * r['wall_s'] / 3600:.0f} h"
    )


if __name__ == "__main__":
    main()
