"""Devices: naming them, finding them, and every runtime and codec degrading to the CPU."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
import pytest
from tiny_onnx import tiny_model

from playhead.cli import main
from playhead.effects import devices, registry, tflite
from playhead.effects.base import Band, Effect, EffectParams
from playhead.effects.basic import PassthroughParams, _IdentityRunner
from playhead.effects.devices import CPU, Device, InvalidDeviceError
from playhead.errors import PlayheadError
from playhead.media import codecs
from playhead.media.asset import Asset, AssetDir
from playhead.media.decode import MezzanineReader
from playhead.media.export import Mp4Writer
from playhead.media.fmp4 import SegmentEncoder
from playhead.media.testsrc import decode_all, make_barcode_video, read_barcode
from playhead.pipeline import SegmentPipeline
from playhead.types import FrameRange

CUDA0 = Device("cuda", 0)
CPU_ONLY = ["CPUExecutionProvider"]


@pytest.fixture(autouse=True)
def _fresh_device(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test decides the process's device from scratch, and leaves it undecided."""
    for name in (devices.ENV, devices.TENSORRT_ENV, codecs.NVDEC_ENV, "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    devices.reset()
    yield
    devices.reset()


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without a GPU and with a CPU-only onnxruntime, as the reference machine is:
    the fallbacks are checked on a GPU machine too (benchmarks/gpu_check.sh checks the GPU)."""
    monkeypatch.setattr(devices, "gpu_present", lambda: False)
    monkeypatch.setattr(devices, "ort_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(codecs, "nvenc_opens", lambda gpu=0, width=256, height=256: False)
    monkeypatch.setattr(codecs, "cuvid_opens", lambda gpu=0: False)
    devices.reset()


# --- naming ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "device"),
    [
        ("cpu", CPU),
        ("cuda", CUDA0),
        ("cuda:0", CUDA0),
        ("cuda:3", Device("cuda", 3)),
        (" CUDA:1 ", Device("cuda", 1)),
    ],
)
def test_parse_device(text: str, device: Device) -> None:
    assert devices.parse_device(text) == device


def test_auto_is_what_detect_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "detect", lambda: Device("cuda", 0))
    assert devices.parse_device("auto") == CUDA0
    monkeypatch.setattr(devices, "detect", lambda: CPU)
    assert devices.parse_device("auto") == CPU


@pytest.mark.parametrize(
    "text", ["gpu", "", "cuda:", "cuda:-1", "cuda:x", "cpu:0", "tpu", "cuda:²"]
)
def test_bad_device_names_are_clear_errors(text: str) -> None:
    with pytest.raises(InvalidDeviceError, match="expected cpu, cuda, cuda:N") as e:
        devices.parse_device(text)
    assert isinstance(e.value, PlayheadError) and isinstance(e.value, ValueError)
    assert e.value.code == "invalid_device" and repr(text) in e.value.message


def test_device_names_and_classes() -> None:
    assert str(CPU) == "cpu" and CPU.klass == "cpu"
    assert str(CUDA0) == "cuda:0" and CUDA0.klass == "cuda"
    assert str(Device("cuda", 2)) == "cuda:2" and Device("cuda", 2).ordinal == 2
    assert str(Device("cuda")) == "cuda" and Device("cuda").ordinal == 0
    for kind, index in [("cpu", 0), ("cuda", -1), ("rocm", None)]:
        with pytest.raises(InvalidDeviceError):
            Device(kind, index)  # type: ignore[arg-type]


# --- finding -----------------------------------------------------------------------------


@pytest.mark.usefixtures("no_gpu")
def test_detect_on_this_machine_is_the_cpu() -> None:
    assert devices.detect() == CPU
    assert devices.current() == CPU


@pytest.mark.parametrize(
    ("providers", "gpu", "found"),
    [
        (["CUDAExecutionProvider", "CPUExecutionProvider"], True, CUDA0),
        (["CUDAExecutionProvider", "CPUExecutionProvider"], False, CPU),  # a CUDA build, no GPU
        (["AzureExecutionProvider", "CPUExecutionProvider"], True, CPU),  # a GPU, CPU build
        ([], True, CPU),  # onnxruntime did not import
    ],
)
def test_detect_needs_both_cuda_onnxruntime_and_a_gpu(
    monkeypatch: pytest.MonkeyPatch, providers: list[str], gpu: bool, found: Device
) -> None:
    monkeypatch.setattr(devices, "ort_providers", lambda: providers)
    monkeypatch.setattr(devices, "_gpu_hardware", lambda: gpu)
    assert devices.detect() == found


def test_cuda_visible_devices_empty_hides_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_gpu_hardware", lambda: True)
    assert devices.gpu_present()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert not devices.gpu_present()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not devices.gpu_present()


def test_current_is_use_then_the_environment_then_detect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "detect", lambda: Device("cuda", 7))
    assert devices.current() == Device("cuda", 7)  # nothing set: detect, once
    devices.reset()
    monkeypatch.setenv(devices.ENV, "cuda:1")
    assert devices.current() == Device("cuda", 1)
    assert devices.use("cpu") == CPU and devices.current() == CPU
    with devices.using(CUDA0) as d:
        assert d == CUDA0 and devices.current() == CUDA0
    assert devices.current() == CPU


def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(devices.ENV, "gpu0")
    with pytest.raises(InvalidDeviceError, match="PLAYHEAD_DEVICE"):
        devices.current()


# --- onnxruntime -------------------------------------------------------------------------


def test_onnx_providers_for_the_cpu_are_the_cpu_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert devices.onnx_providers(CPU) == CPU_ONLY
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(devices, "ort_providers", lambda: everything)
    assert devices.onnx_providers(CPU) == CPU_ONLY  # even where a GPU runtime is installed


@pytest.mark.usefixtures("no_gpu")
def test_onnx_providers_for_cuda_without_cuda_runtime_degrade_to_the_cpu() -> None:
    assert devices.onnx_providers(CUDA0) == CPU_ONLY
    assert devices.onnx_providers(Device("cuda", 1)) == CPU_ONLY


def test_onnx_providers_for_cuda_are_tensorrt_cuda_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(devices, "ort_providers", lambda: everything)
    got = devices.onnx_providers(Device("cuda", 1))
    assert [p if isinstance(p, str) else p[0] for p in got] == everything
    trt = got[0]
    assert isinstance(trt, tuple) and trt[1]["device_id"] == "1"
    assert trt[1]["trt_engine_cache_enable"] == "True"  # engines are built once, then kept
    assert got[1] == ("CUDAExecutionProvider", {"device_id": "1"})
    monkeypatch.setenv(devices.TENSORRT_ENV, "0")
    assert devices.onnx_providers(Device("cuda", 1)) == [
        ("CUDAExecutionProvider", {"device_id": "1"}),
        "CPUExecutionProvider",
    ]
    devices.use("cuda:2")  # no device given: the process's
    assert devices.onnx_providers()[0] == ("CUDAExecutionProvider", {"device_id": "2"})


def test_onnx_session_falls_back_to_the_cpu_when_gpu_providers_raise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = tiny_model(tmp_path / "m.onnx")
    monkeypatch.setattr(
        devices, "ort_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    real = ort.InferenceSession
    asked: list[list[str]] = []

    def session(path: str, providers: list[str], **kw: Any) -> ort.InferenceSession:
        asked.append(list(providers))
        if "CUDAExecutionProvider" in providers:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real(path, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    s = devices.onnx_session(model, CUDA0)
    assert asked == [["CUDAExecutionProvider", "CPUExecutionProvider"], CPU_ONLY]
    assert s.get_providers() == CPU_ONLY
    y = s.run(None, {"x": np.ones((2, 3, 32, 32), np.float32)})[0]
    assert y.shape == (2, 1, 32, 32)


def test_no_provider_list_outside_devices() -> None:
    src = Path(devices.__file__).parents[1]
    users = [
        p.relative_to(src).as_posix()
        for p in src.rglob("*.py")
        if "ExecutionProvider" in p.read_text() and p.name != "devices.py"
    ]
    assert users == []


# --- LiteRT ------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_gpu")
def test_litert_runs_on_the_cpu_without_a_gpu_delegate() -> None:
    assert devices.litert_delegates(CPU) == []
    assert devices.litert_delegates(CUDA0) == []  # the wheel ships no GPU delegate


def test_litert_interpreter_falls_back_when_the_delegate_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from playhead.effects import models

    path = models.weights_path("face_detection_short_range")
    made: list[bool] = []
    from ai_edge_litert.interpreter import Interpreter as real

    def interpreter(**kw: Any) -> Any:
        made.append("experimental_delegates" in kw)
        if "experimental_delegates" in kw:
            raise ValueError("Failed to apply delegate")
        return real(**kw)

    monkeypatch.setattr(devices, "litert_delegates", lambda device=None: ["a GPU delegate"])
    monkeypatch.setattr("playhead.effects.tflite.Interpreter", interpreter)
    interp = tflite.interpreter(path, threads=1)
    assert made == [True, False]
    assert interp.get_input_details()[0]["shape"].tolist() == [1, 128, 128, 3]


# --- effects' declarations ---------------------------------------------------------------


class _Bare:
    """A plug-in written before devices existed: no declarations."""

    name: ClassVar[str] = "bare"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = PassthroughParams
    bands: ClassVar[tuple[Band, ...]] = ("rgb",)
    context_frames: ClassVar[int] = 0

    def load(self) -> _IdentityRunner:
        return _IdentityRunner()


def test_an_effect_without_declarations_gets_the_defaults() -> None:
    bare: Effect = _Bare()  # still an Effect: the declarations are optional (mypy checks this)
    assert devices.effect_devices(bare) == ("cpu",)
    assert devices.preferred_batch(bare, "cpu") == 8
    assert devices.preferred_batch(bare, "cuda", default=4) == 4
    d = registry.describe(bare)
    assert d["devices"] == ["cpu"] and d["batch_sizes"] == {"cpu": 8}


def test_declarations_are_read_and_checked() -> None:
    class Later(_Bare):
        devices: ClassVar[tuple[str, ...]] = ("tpu", "cuda", "cpu")  # a later playhead's class
        batch_sizes: ClassVar[Mapping[str, int]] = {"cuda": 64}

    assert devices.effect_devices(Later()) == ("cuda", "cpu")
    assert devices.preferred_batch(Later(), "cuda") == 64
    assert devices.preferred_batch(Later(), "cpu") == 8

    class Unknown(_Bare):
        devices: ClassVar[tuple[str, ...]] = ("tpu",)

    assert devices.effect_devices(Unknown()) == ("cpu",)

    class Stringly(_Bare):
        devices: ClassVar[str] = "cuda"

    with pytest.raises(InvalidDeviceError, match="tuple of device classes"):
        devices.effect_devices(Stringly())

    class Zero(_Bare):
        batch_sizes: ClassVar[Mapping[str, int]] = {"cpu": 0}

    with pytest.raises(InvalidDeviceError, match="positive integer"):
        devices.preferred_batch(Zero(), "cpu")


def test_every_builtin_declares_devices_and_batch_sizes() -> None:
    for effect in registry.BUILTINS:
        declared = vars(type(effect))
        assert "devices" in declared and "batch_sizes" in declared, effect.name
        klasses = devices.effect_devices(effect)
        assert set(klasses) <= set(devices.KINDS) and set(declared["batch_sizes"]) == set(klasses)
        d = registry.describe(effect)
        assert d["devices"] == list(klasses)
        assert d["batch_sizes"] == dict(declared["batch_sizes"])
    onnx_effect = registry.describe(registry.get("onnx"))
    assert onnx_effect["devices"] == ["cuda", "cpu"]
    assert onnx_effect["batch_sizes"] == {"cuda": 32, "cpu": 8}
    assert registry.describe(registry.get("person"))["devices"] == ["cpu"]


# --- codecs ------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_gpu")
def test_the_encoder_for_the_cpu_is_x264_and_cuda_here_falls_back_to_it() -> None:
    assert codecs.h264_encoder(CPU, 320, 240) == "libx264"
    assert codecs.h264_encoder(CUDA0, 320, 240) == "libx264"
    assert codecs.h264_decoder(CPU) is None and codecs.h264_decoder(CUDA0) is None


def test_nvenc_and_nvdec_only_for_cuda_and_where_they_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codecs, "nvenc_opens", lambda gpu=0, width=0, height=0: True)
    monkeypatch.setattr(codecs, "cuvid_opens", lambda gpu=0: True)
    assert codecs.h264_encoder(CPU, 320, 240) == "libx264"
    assert codecs.h264_encoder(CUDA0, 320, 240) == "h264_nvenc"
    assert codecs.h264_decoder(CUDA0) is None  # NVDEC waits for an opt-in
    monkeypatch.setenv(codecs.NVDEC_ENV, "1")
    assert codecs.h264_decoder(CUDA0) == "h264_cuvid" and codecs.h264_decoder(CPU) is None


def test_nvenc_settings_keep_segments_frame_exact() -> None:
    seg = codecs.segment_options(Device("cuda", 1), 23)
    assert seg["bf"] == "0" and seg["zerolatency"] == "1"  # pts == dts, as x264 zerolatency
    assert int(seg["g"]) > 100_000 and seg["no-scenecut"] == "1"  # one IDR: the first frame
    assert seg["gpu"] == "1" and seg["cq"] == "23"
    assert codecs.nvenc_options(CUDA0, 18)["bf"] == "0"


def test_the_mp4_writer_takes_the_device_encoder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(codecs, "nvenc_opens", lambda gpu=0, width=0, height=0: True)
    devices.use(CUDA0)
    w = Mp4Writer(tmp_path / "a.mp4", 320, 240, Fraction(30))
    try:  # the codec is opened at the first frame: nothing here needs NVENC to work
        assert w._stream.codec_context.name == "h264_nvenc"
        assert w._stream.codec_context.options["bf"] == "0"
    finally:
        w.abort()
    devices.use(CPU)
    w = Mp4Writer(tmp_path / "b.mp4", 320, 240, Fraction(30))
    try:
        assert w._stream.codec_context.name == "libx264"
    finally:
        w.abort()


def _render(data: Path, src: Path, model: Path, out: Path) -> None:
    argv = ["--data", str(data), "render", str(src), "-e", "onnx", "-p", f"model={model}"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([*argv, "-o", str(out)])
    assert code == 0, err.getvalue()


@pytest.mark.usefixtures("no_gpu")
def test_a_render_on_cuda_here_is_the_cpu_render_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``playhead render`` with PLAYHEAD_DEVICE=cuda:0 on a machine without one: the ONNX model
    falls back to the CPU, the encoder to libx264, and the file is the CPU's."""
    src = make_barcode_video(tmp_path / "src.mp4", 40, Fraction(30), (320, 240))
    model = tiny_model(tmp_path / "m.onnx")
    outs = {}
    for name in ("cpu", "cuda:0"):
        monkeypatch.setenv(devices.ENV, name)
        devices.reset()
        outs[name] = tmp_path / f"{name.replace(':', '')}.mp4"
        _render(tmp_path / "data", src, model, outs[name])
        assert str(devices.current()) == name  # the render ran on the device it was told
    assert outs["cpu"].read_bytes() == outs["cuda:0"].read_bytes()
    frames = decode_all(outs["cuda:0"])
    assert len(frames) == 40
    assert [read_barcode(f.to_ndarray(format="rgb24")) for f in frames] == list(range(40))


@pytest.mark.usefixtures("no_gpu")
def test_segments_and_onnx_on_cuda_here_are_the_cpu_ones(
    barcode_asset: tuple[Asset, AssetDir], tmp_path: Path
) -> None:
    asset, adir = barcode_asset
    effect = registry.get("onnx")
    params = registry.parse_params(effect, {"model": str(tiny_model(tmp_path / "m.onnx"))})
    got: dict[str, tuple[np.ndarray, bytes, int]] = {}
    for device in (CPU, CUDA0):
        with (
            devices.using(device),
            SegmentPipeline(asset, adir, effect, effect.load(), params) as p,
        ):
            seg = p.render(1)
            encoded = SegmentEncoder(asset.width, asset.height, asset.fps).encode(
                seg.frames.start, seg.composite
            )
            got[str(device)] = (seg.bands["matte"], encoded.init + encoded.media, p.batch_size)
    (m_cpu, b_cpu, batch_cpu), (m_gpu, b_gpu, batch_gpu) = got["cpu"], got["cuda:0"]
    assert np.array_equal(m_cpu, m_gpu) and b_cpu == b_gpu
    assert (batch_cpu, batch_gpu) == (8, 32)  # the effect's preferred batch for the device


def test_a_named_decoder_reads_the_same_frames(barcode_asset: tuple[Asset, AssetDir]) -> None:
    """The reader's path for a named decoder (NVDEC's) with FFmpeg's software ``h264``."""
    _, adir = barcode_asset
    _, index = adir.load()
    ranges = [(0, 30), (45, 50), (10, 20), (90, 95), (59, 62), (0, 95)]
    with (
        MezzanineReader(adir.mezzanine, index) as own,
        MezzanineReader(adir.mezzanine, index, decoder="h264") as named,
    ):
        assert own.decoder is None and named.decoder == "h264"
        for start, stop in ranges:
            a, b = own.read(FrameRange(start, stop)), named.read(FrameRange(start, stop))
            assert np.array_equal(a, b), (start, stop)
            assert [read_barcode(f) for f in b] == list(range(start, stop))
