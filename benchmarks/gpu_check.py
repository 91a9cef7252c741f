"""One check of playhead's GPU path against its CPU path (run by benchmarks/gpu_check.sh).

1. What this machine offers: GPU, onnxruntime providers, PyAV's NVENC / NVDEC, LiteRT's GPU
   delegate, and the device ``auto`` picks.
2. A generated clip (frames that carry their index as a barcode) is rendered through ``onnx``
   (a small convolutional model built here), ``person`` and ``roto`` (the SAM-style encoder,
   a box on the first frame), once with ``PLAYHEAD_DEVICE=cpu``
   and once with ``PLAYHEAD_DEVICE=cuda:0``, each in its own process:
   - ``playhead render`` to an mp4 export (the device's encoder: NVENC where it opens);
   - the segment pipeline, its mattes saved, its composite encoded as fMP4 segments with the
     device's encoder (NVENC here even though the fleet's segments stay on libx264: this is
     the check that NVENC's segment settings are frame-exact), and on cuda, the mezzanine
     read through NVDEC next to FFmpeg's software decoder.
3. Both outputs are decoded and compared: frame counts, frame order (barcodes), segment
   keyframes, byte-identical inits, mattes (max abs diff; for ``roto``, whose mattes are SAM's
   binary masks where one flipped pixel differs by 255, their IoU) and pictures (PSNR).

Exit status 0 when every check passes, 1 when one fails, 2 when the check itself broke.
``--require nvenc,ort-cuda`` also fails when something expected on this machine is missing.

    .venv/bin/python benchmarks/gpu_check.py [--work DIR] [--require gpu,nvenc,nvdec,ort-cuda]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from playhead.effects import devices, models, registry
from playhead.effects.devices import Device
from playhead.media import codecs
from playhead.media.asset import AssetDir
from playhead.media.decode import MezzanineReader
from playhead.media.fmp4 import SegmentEncoder
from playhead.media.ingest import ingest
from playhead.media.testsrc import decode_all, make_barcode_video, read_barcode
from playhead.pipeline import SegmentPipeline
from playhead.types import FrameRange

FRAMES, FPS, SIZE = 75, Fraction(30), (640, 360)  # 2.5 segments of 1 s
DEVICES = ("cpu", "cuda:0")
MATTE_TOLERANCE = {"onnx": 3, "person": 8}  # of 255: TF32 convolutions, a GPU delegate
MIN_MATTE_IOU = {"roto": 0.97}  # binary masks: a few boundary pixels may flip
MIN_PSNR = 35.0  # dB between the cpu and cuda exports: two encoders at the same quality
NVDEC_TOLERANCE = 2  # of 255: NV12 and YUV420P take different conversions to RGB
REQUIRABLE = ("gpu", "ort-cuda", "nvenc", "nvdec", "litert-gpu")


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def __call__(self, ok: bool, what: str, detail: str = "") -> bool:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}{f'  ({detail})' if detail else ''}")
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
        return ok


# --- what the machine offers ---------------------------------------------------------------


def offers() -> dict[str, Any]:
    import onnxruntime as ort

    w, h = SIZE
    smi = shutil.which("nvidia-smi")
    gpus = ""
    if smi:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
        gpus = done.stdout.strip() or done.stderr.strip()
    return {
        "gpu": devices.gpu_present(),
        "nvidia-smi": gpus or "not available",
        "onnxruntime": ort.__version__,
        "providers": devices.ort_providers(),
        "ort-cuda": "CUDAExecutionProvider" in devices.ort_providers(),
        "pyav": av.__version__,
        "nvenc": codecs.nvenc_opens(0, w, h),
        "nvdec": codecs.cuvid_opens(0),
        "litert-gpu": devices.litert_delegates(Device("cuda", 0)) != [],
        "auto": str(devices.detect()),
        "onnx providers on cuda:0": [
            p if isinstance(p, str) else p[0] for p in devices.onnx_providers(Device("cuda", 0))
        ],
    }


# --- inputs ------------------------------------------------------------------------------


def onnx_model(path: Path) -> Path:
    """conv 3x3 (3→8) → relu → conv 1x1 (8→1) → sigmoid at 64x64: real cuDNN work, any batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32),
        "b1": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "w2": rng.normal(0, 0.5, (1, 8, 1, 1)).astype(np.float32),
        "b2": np.zeros((1,), np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
        helper.make_node("Sigmoid", ["c2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "gpucheck",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 64, 64])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# --- one device, in its own process ------------------------------------------------------


def inner(args: argparse.Namespace) -> int:
    """Render the clip through one effect on ``$PLAYHEAD_DEVICE``; write what to compare."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    device = devices.current()
    effect = registry.get(args.effect)
    raw = json.loads(args.params)
    params = registry.parse_params(effect, raw)
    asset = ingest(args.clip, args.data)
    adir = AssetDir(args.data / "assets" / asset.id)
    info: dict[str, Any] = {"device": str(device)}
    if args.effect == "onnx":
        info["providers"] = devices.onnx_session(raw["model"]).get_providers()
    codec = codecs.h264_encoder(device, asset.width, asset.height)
    encoder = SegmentEncoder(asset.width, asset.height, asset.fps, codec=codec)
    info["segment_encoder"] = codec
    mattes, media, inits = [], [], set()
    started = time.perf_counter()
    with SegmentPipeline(asset, adir, effect, effect.load(), params) as pipe:
        info["batch"] = pipe.batch_size
        for k in range(asset.segments):
            seg = pipe.render(k)
            mattes.append(seg.bands["matte"])
            encoded = encoder.encode(seg.frames.start, seg.composite)
            inits.add(encoded.init)
            media.append(encoded.media)
    info["seconds"] = time.perf_counter() - started
    inits.add(encoder.init())
    info["inits_identical"] = len(inits) == 1
    info["segment_frames"] = asset.segment_frames
    (out / "segments.mp4").write_bytes(min(inits) + b"".join(media))
    np.save(out / "matte.npy", np.concatenate(mattes))
    if device.kind == "cuda" and codecs.cuvid_opens(device.ordinal):
        info["nvdec"] = nvdec_check(adir)
    (out / "info.json").write_text(json.dumps(info, indent=1))
    return 0


def nvdec_check(adir: AssetDir) -> dict[str, Any]:
    """The mezzanine through NVDEC, with seeks back and forth, next to the software decoder."""
    _, index = adir.load()
    n = len(index.pts)
    reference = np.stack([f.to_ndarray(format="rgb24") for f in decode_all(adir.mezzanine)])
    ranges = [(0, n), (40, 50), (5, 35), (n - 10, n), (29, 31), (0, 1), (31, 62)]
    worst, order_ok, error = 0, True, ""
    try:
        with MezzanineReader(adir.mezzanine, index, decoder=codecs.CUVID) as reader:
            for start, stop in ranges:
                got = reader.read(FrameRange(start, stop))
                want = reference[start:stop]
                order_ok &= [read_barcode(f) for f in got] == list(range(start, stop))
                order_ok &= got.shape == want.shape
                if got.shape == want.shape:
                    worst = max(worst, int(np.abs(got.astype(int) - want).max()))
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    return {"frames_in_order": order_ok, "max_abs_diff": worst, "error": error}


# --- the comparison ----------------------------------------------------------------------


def frames_of(path: Path) -> np.ndarray:
    return np.stack([f.to_ndarray(format="rgb24") for f in decode_all(path)])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def keyframes(path: Path) -> tuple[list[int], list[int]]:
    """Frame numbers of the keyframes and of every packet, from the packets' timestamps."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        tb = Fraction(s.time_base or 1)
        packets = [(p.pts, p.is_keyframe) for p in c.demux(s) if p.pts is not None]
    index = [round(pts * tb * FPS) for pts, _ in packets]
    return [i for i, (_, key) in zip(index, packets, strict=True) if key], index


def check_effect(name: str, work: Path, check: Checks) -> None:
    runs = {d: work / name / d.replace(":", "") for d in DEVICES}
    infos = {d: json.loads((runs[d] / "info.json").read_text()) for d in DEVICES}
    for d in DEVICES:
        i = infos[d]
        extra = f", providers {i['providers']}" if "providers" in i else ""
        print(
            f"  {d}: ran on {i['device']}, batch {i['batch']}, segments by "
            f"{i['segment_encoder']}{extra}, {FRAMES / i['seconds']:.0f} fps"
        )
    seg = infos["cpu"]["segment_frames"]
    starts = list(range(0, FRAMES, seg))
    for d in DEVICES:
        path = runs[d] / "segments.mp4"
        frames = frames_of(path)
        check(len(frames) == FRAMES, f"{name} {d} segments: {FRAMES} frames", f"{len(frames)}")
        codes = [read_barcode(f) for f in frames]
        check(codes == list(range(FRAMES)), f"{name} {d} segments: frames in order")
        keys, index = keyframes(path)
        check(
            keys == starts, f"{name} {d} segments: a keyframe at each segment start only", f"{keys}"
        )
        check(index == list(range(FRAMES)), f"{name} {d} segments: timestamps are frame indices")
        check(infos[d]["inits_identical"], f"{name} {d} segments: every init byte-identical")
        export = frames_of(runs[d] / "export.mp4")
        check(len(export) == FRAMES, f"{name} {d} export: {FRAMES} frames", f"{len(export)}")
        codes = [read_barcode(f) for f in export]
        check(codes == list(range(FRAMES)), f"{name} {d} export: frames in order")
    a, b = (np.load(runs[d] / "matte.npy") for d in DEVICES)
    if name in MIN_MATTE_IOU:
        inside = (a > 127, b > 127)
        iou = float((inside[0] & inside[1]).sum() / max(1, (inside[0] | inside[1]).sum()))
        check(iou >= MIN_MATTE_IOU[name], f"{name} mattes cpu ≈ cuda", f"IoU {iou:.4f}")
    else:
        diff = int(np.abs(a.astype(int) - b).max()) if a.shape == b.shape else 255
        check(diff <= MATTE_TOLERANCE[name], f"{name} mattes cpu ≈ cuda", f"max abs diff {diff}")
    exports = {d: (runs[d] / "export.mp4").read_bytes() for d in DEVICES}
    x264 = {d: b"x264 - core" in exports[d] for d in DEVICES}
    print(
        "  export encoders: "
        + ", ".join(f"{d} {'libx264' if x264[d] else 'other (NVENC)'}" for d in DEVICES)
    )
    if all(x264.values()) and np.array_equal(a, b):
        check(exports["cpu"] == exports["cuda:0"], f"{name} export: cuda's is cpu's, byte for byte")
    ea, eb = (frames_of(runs[d] / "export.mp4") for d in DEVICES)
    if ea.shape == eb.shape:
        worst = min(psnr(x, y) for x, y in zip(ea, eb, strict=True))
        check(worst >= MIN_PSNR, f"{name} export: cpu ≈ cuda", f"min PSNR {worst:.1f} dB")
    nvdec = infos["cuda:0"].get("nvdec")
    if nvdec is not None:
        check(not nvdec["error"], f"{name} NVDEC decodes the mezzanine", nvdec["error"])
        check(
            nvdec["frames_in_order"],
            f"{name} NVDEC: the same frames in the same order, across seeks",
        )
        check(
            nvdec["max_abs_diff"] <= NVDEC_TOLERANCE,
            f"{name} NVDEC: pixels as the software decoder's",
            f"max abs diff {nvdec['max_abs_diff']}",
        )


def run(cmd: list[str], device: str) -> None:
    env = {**os.environ, devices.ENV: device}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}… on {device} failed:\n{done.stderr[-3000:]}")


def outer(args: argparse.Namespace) -> int:
    print("== what this machine offers")
    found = offers()
    for k, v in found.items():
        print(f"  {k}: {v}")
    if not found["gpu"]:
        print("  no GPU here: cuda is unavailable, so the cuda:0 run checks the CPU fallbacks")
    work = args.work or Path(tempfile.mkdtemp(prefix="playhead-gpucheck-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = make_barcode_video(work / "clip.mp4", FRAMES, FPS, SIZE)
    effects: dict[str, dict[str, Any]] = {
        "onnx": {"model": str(onnx_model(work / "model.onnx")), "background": "none"},
        "person": {"background": "none"},
        # the barcode band is the subject: a box around it on the first frame
        "roto": {
            "prompts": [{"frame": 0, "box": [0, 0, SIZE[0], SIZE[1] // 4]}],
            "every": 8,
            "feather": 0,
            "background": "none",
        },
    }
    try:
        models.fetch()
    except Exception as e:
        print(f"  person, roto: skipped, no weights ({e})")
        del effects["person"], effects["roto"]
    check = Checks()
    for name, params in effects.items():
        print(f"== {name}")
        for d in DEVICES:
            out = work / name / d.replace(":", "")
            me = [sys.executable, str(Path(__file__).resolve()), "inner", "--effect", name]
            run([*me, "--params", json.dumps(params), "--clip", str(clip),
                 "--data", str(work / "data"), "--out", str(out)], d)  # fmt: skip
            cli = [sys.executable, "-m", "playhead.cli", "--data", str(work / "data"), "render"]
            cli += [str(clip), "-e", name, "-o", str(out / "export.mp4")]
            cli += [arg for k, v in params.items() for arg in ("-p", f"{k}={json.dumps(v)}")]
            run(cli, d)
        check_effect(name, work, check)
    for need in args.require:
        check(bool(found[need]), f"required here: {need}")
    verdict = "PASS" if not check.failed else "FAIL"
    print(f"== verdict: {verdict}: {check.passed} passed, {len(check.failed)} failed")
    for what in check.failed:
        print(f"  failed: {what}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not check.failed else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = p.add_subparsers(dest="command")
    p.add_argument("--work", type=Path, help="working directory (default: a new temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the working directory")
    p.add_argument(
        "--require",
        type=lambda s: [x for x in s.split(",") if x],
        default=[],
        help=f"comma-separated, of {', '.join(REQUIRABLE)}: fail when one is missing",
    )
    i = sub.add_parser("inner", help="(internal) one effect on $PLAYHEAD_DEVICE")
    i.add_argument("--effect", required=True)
    i.add_argument("--params", required=True)
    i.add_argument("--clip", type=Path, required=True)
    i.add_argument("--data", type=Path, required=True)
    i.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    for need in args.require:
        if need not in REQUIRABLE:
            p.error(f"--require: {need!r} is not one of {', '.join(REQUIRABLE)}")
    try:
        return inner(args) if args.command == "inner" else outer(args)
    except Exception as e:
        print(f"gpu_check: broke: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
