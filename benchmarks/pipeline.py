"""Tight-loop throughput of each pipeline stage, and of the whole segment pipeline.

On a 720p clip, for each effect, in one run:

    decode   MezzanineReader over every segment                   (frames/s)
    effect   runner.run + composite over pre-decoded frames       (frames/s)
    encode   SegmentEncoder (composite variant) of every segment  (frames/s)
    pipeline decode → effect → encode, segment by segment         (frames/s)

``overhead`` = pipeline time ÷ (decode + effect + encode time): 1.00 means the pipeline adds
nothing to its stages run back to back; lower than 1 means stages overlap (codec threads).

    .venv/bin/python benchmarks/pipeline.py [--effect person --effect cost:ms_per_frame=20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from playhead import samples
from playhead.effects import registry
from playhead.media.asset import AssetDir
from playhead.media.fmp4 import SegmentEncoder
from playhead.media.ingest import ingest
from playhead.pipeline import SegmentPipeline

DEFAULT_EFFECTS = ["person", "cost:ms_per_frame=20"]


def bench(spec: str, data: Path, source: Path, repeat: int) -> dict[str, Any]:
    name, _, raw = spec.partition(":")
    effect = registry.get(name)
    params = registry.parse_params(effect, registry.parse_cli_params(raw.split(",") if raw else []))
    asset = ingest(source, data)
    adir = AssetDir(data / "assets" / asset.id)
    runner = effect.load()
    encoder = SegmentEncoder(asset.width, asset.height, asset.fps)
    segments = range(asset.segments)
    n = asset.frames * repeat

    with SegmentPipeline(asset, adir, effect, runner, params) as pipe:
        pipe.render(0)  # warm the model and the codecs
        t = time.perf_counter()
        decoded = [pipe.decode(k) for _ in range(repeat) for k in segments]
        t_decode = time.perf_counter() - t

        t = time.perf_counter()
        results = [pipe.run(*d) for d in decoded]
        t_effect = time.perf_counter() - t

        t = time.perf_counter()
        for r in results:
            encoder.encode(r.frames.start, r.composite)
        t_encode = time.perf_counter() - t
        del decoded, results

        t = time.perf_counter()
        for _ in range(repeat):
            for k in segments:
                r = pipe.render(k)
                encoder.encode(r.frames.start, r.composite)
        t_pipeline = time.perf_counter() - t

    return {
        "effect": spec,
        "clip": f"{asset.width}x{asset.height} {float(asset.fps):.2f} fps, {n} frames",
        "decode_fps": n / t_decode,
        "effect_fps": n / t_effect,
        "encode_fps": n / t_encode,
        "pipeline_fps": n / t_pipeline,
        "overhead": t_pipeline / (t_decode + t_effect + t_encode),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--effect", action="append", help="name[:key=value,...]")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the clip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    source = samples.fetch()["bigbuckbunny.mp4"]  # 1280x720, 25 fps, 132 frames
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.effect or DEFAULT_EFFECTS:
            rows.append(bench(spec, Path(tmp), source, args.repeat))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"clip: {rows[0]['clip']}")
    print(f"| {'effect':<24} | decode | effect | encode | pipeline | overhead |")
    print(f"|{'-' * 26}|-------:|-------:|-------:|---------:|---------:|")
    for r in rows:
        print(
            f"| {r['effect']:<24} | {r['decode_fps']:6.1f} | {r['effect_fps']:6.1f} "
            f"| {r['encode_fps']:6.1f} | {r['pipeline_fps']:8.1f} | {r['overhead']:8.2f} |"
        )


if __name__ == "__main__":
    main()
