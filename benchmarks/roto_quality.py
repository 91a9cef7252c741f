"""How well ``roto`` cuts out what was clicked, and how fast: J, F, J&F, decay, recovery.

Runs the effect as the product does — one-second segments, each rendered on its own (the
first from the annotated frame, the next found again by the appearance memory) — over the
synthetic suite of `playhead.bench.roto_suite` (photo cut-outs moving with affine and
non-rigid motion over panning backgrounds, look-alike distractors, occluders, feathered
edges, motion blur), scored by `playhead.bench.roto_scores`, for each speed/quality setting
(``every``: SAM every n-th frame):

- *one annotation*: clicks simulated from the ground truth on the first frame;
- *one correction*: a second annotated frame where the first run was worst (clicks like the
  first plus one on its largest error), as a user scrubbing to the drift would add.

    .venv/bin/python benchmarks/roto_quality.py [--seeds 0 1 2] [--every 1 4 8] [--frames 48]

ms/frame is the whole segment (encoder, decoder, flow, memory) on this machine's CPU with a
fresh runner per sequence, so nothing computed for one setting helps another.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from playhead.bench.roto_scores import correction_click, initial_clicks, jaccard, score
from playhead.bench.roto_suite import Sequence, suite
from playhead.effects.roto import Click, Prompt, RotoRunner, relevant
from playhead.effects.sam import Sam
from playhead.types import FrameRange


def prompt(frame: int, clicks: list[dict[str, float]]) -> Prompt:
    points = tuple(Click(x=c["x"], y=c["y"], label=int(c["label"])) for c in clicks)
    return Prompt(frame=frame, points=points)


def propagate(
    sam: Sam, seq: Sequence, prompts: tuple[Prompt, ...], every: int
) -> tuple[np.ndarray, float]:
    """Every frame's mask, segment by segment as workers render them; seconds taken."""
    runner = RotoRunner(sam)  # nothing cached from another run
    length = max(1, round(seq.fps))  # one-second segments, as ingest makes them
    masks = np.zeros(seq.masks.shape, bool)
    started = time.perf_counter()
    for start in range(0, len(seq.frames), length):
        span = FrameRange(start, min(start + length, len(seq.frames)))
        used = relevant(prompts, span)
        anchors = {q.frame: seq.frames[q.frame] for q in used}
        masks[span.start : span.stop] = runner.masks(
            seq.frames[span.start : span.stop], span, used, anchors, every
        )
    return masks, time.perf_counter() - started


def run(seeds: list[int], everies: list[int], frames: int) -> list[dict[str, Any]]:
    sam = Sam()
    sequences = suite(seeds, frames)
    rows = []
    for every in everies:
        for seq in sequences:
            rng = np.random.default_rng(0)
            first = (prompt(0, initial_clicks(seq.masks[0], rng)),)
            masks, took = propagate(sam, seq, first, every)
            one = score(masks, seq.masks, seq.occluded)
            # the correction: where the first run was worst
            worst = int(np.argmin([jaccard(m, g) for m, g in zip(masks, seq.masks, strict=True)]))
            fixed = one
            if worst != 0 and seq.masks[worst].any():
                clicks = initial_clicks(seq.masks[worst], rng)
                if not np.array_equal(masks[worst], seq.masks[worst]):
                    clicks.append(correction_click(masks[worst], seq.masks[worst]))
                second = (*first, prompt(worst, clicks))
                fixed = score(propagate(sam, seq, second, every)[0], seq.masks, seq.occluded)
            rows.append(
                {
                    "every": every,
                    "sequence": seq.name,
                    "one": one,
                    "fixed": fixed,
                    "worst": worst,
                    "ms": 1000 * took / len(seq.frames),
                }
            )
            print(
                f"every={every} {seq.name:28s} J&F {one['JF']:.3f} → {fixed['JF']:.3f} "
                f"(J {one['J']:.3f} F {one['F']:.3f} decay {one['decay']:+.3f}"
                + (f" recovery {one['recovery']:.3f}" if "recovery" in one else "")
                + f") {rows[-1]['ms']:.0f} ms/frame",
                flush=True,
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| every | J | F | J&F | decay | recovery | J&F with one correction | ms/frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for every in sorted({r["every"] for r in rows}):
        mine = [r for r in rows if r["every"] == every]

        def mean(run: str, key: str, mine: list[dict[str, Any]] = mine) -> str:
            values = [r[run][key] for r in mine if key in r[run]]
            return f"{statistics.fmean(values):.3f}" if values else "–"

        ms = statistics.fmean(r["ms"] for r in mine)
        lines.append(
            f"| {every} | {mean('one', 'J')} | {mean('one', 'F')} | {mean('one', 'JF')} | "
            f"{mean('one', 'decay')} | {mean('one', 'recovery')} | {mean('fixed', 'JF')} | "
            f"{ms:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--every", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    rows = run(args.seeds, args.every, args.frames)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
