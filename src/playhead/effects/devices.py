"""The one place that knows hardware: which device this process renders on, and how to use it.

A process serves one device. A fleet worker is told which (``playhead worker --device``);
``playhead serve`` and ``playhead render`` use ``PLAYHEAD_DEVICE`` when it is set, else
`detect` (``auto``). Everything else asks `current`:

- ONNX models get their execution providers from `onnx_providers` / `onnx_session`
  (TensorRT → CUDA → CPU, each only where the runtime has it; CPU always last);
- LiteRT interpreters get their delegates from `litert_delegates` (none, meaning the CPU,
  unless a GPU delegate library can be loaded);
- the media layer picks hardware codecs for the device (`playhead.media.codecs`).

Effects declare where they can use hardware (``devices``) and the batch each device class
prefers (``batch_sizes``); both are optional, see `effect_devices` and `preferred_batch`.

This module imports neither onnxruntime nor LiteRT until a function needs them, so the media
layer may ask for `current` without loading a model runtime.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from playhead import paths
from playhead.errors import PlayheadError

if TYPE_CHECKING:
    import onnxruntime as ort

    from playhead.effects.base import Effect

log = logging.getLogger(__name__)

DeviceKind = Literal["cpu", "cuda"]
KINDS: tuple[DeviceKind, ...] = ("cpu", "cuda")
"""Every device class playhead knows, in no particular order."""

ENV = "PLAYHEAD_DEVICE"
"""The environment variable `current` reads when no device was set with `use`."""

TENSORRT_ENV = "PLAYHEAD_TENSORRT"
"""``0`` keeps onnxruntime's TensorRT provider out even where it is available."""

LITERT_GPU_ENV = "PLAYHEAD_LITERT_GPU_DELEGATE"
"""Path or name of a LiteRT GPU delegate library to try before the usual names."""

LITERT_GPU_DELEGATES: tuple[str, ...] = (
    "libtensorflowlite_gpu_delegate.so",
    "libtensorflowlite_gpu_gl.so",
)
"""Library names of TensorFlow Lite's GPU delegate on Linux. The ai-edge-litert wheel ships
none of them, so on a stock install `litert_delegates` finds nothing and LiteRT runs on the CPU.
"""

DEFAULT_BATCH = 8


class InvalidDeviceError(PlayheadError, ValueError):
    """A device name that is not ``cpu``, ``cuda``, ``cuda:N`` or ``auto``."""

    status = 422
    code = "invalid_device"


@dataclass(frozen=True)
class Device:
    """A device a process renders on: the CPU, or one CUDA GPU (``index`` None means 0)."""

    kind: DeviceKind = "cpu"
    index: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidDeviceError(f"unknown device kind {self.kind!r}; known: cpu, cuda")
        if self.kind == "cpu" and self.index is not None:
            raise InvalidDeviceError("the cpu device has no index")
        if self.index is not None and (isinstance(self.index, bool) or self.index < 0):
            raise InvalidDeviceError(f"a device index is a number from 0, not {self.index!r}")

    @property
    def klass(self) -> str:
        """The device class, for routing jobs and for effects' declarations: the kind."""
        return self.kind

    @property
    def ordinal(self) -> int:
        """The GPU number to hand to runtimes and codecs (0 when no index was given)."""
        return self.index or 0

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


CPU = Device("cpu")


def parse_device(text: str) -> Device:
    """``cpu``, ``cuda`` (= ``cuda:0``), ``cuda:N`` or ``auto`` (= `detect`)."""
    value = text.strip().lower()
    if value == "auto":
        return detect()
    if value == "cpu":
        return CPU
    if value == "cuda":
        return Device("cuda", 0)
    kind, sep, number = value.partition(":")
    if kind == "cuda" and sep and number.isdigit() and number.isascii():
        return Device("cuda", int(number))
    raise InvalidDeviceError(
        f"unknown device {text!r}; expected cpu, cuda, cuda:N (N = 0, 1, …) or auto"
    )


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible to this process: cheap, cached, never raises.

    ``CUDA_VISIBLE_DEVICES`` set to nothing (or ``-1``) hides every GPU, as it does for CUDA.
    Otherwise a ``/dev/nvidia<N>`` device node counts, or a GPU that ``nvidia-smi -L`` lists.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return _gpu_hardware()


@cache
def _gpu_hardware() -> bool:
    try:
        if any(p.name[len("nvidia") :].isdigit() for p in Path("/dev").glob("nvidia[0-9]*")):
            return True
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return False
        listed = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, timeout=10, check=False
        )
        return listed.returncode == 0 and "GPU " in listed.stdout
    except (OSError, subprocess.SubprocessError):
        return False


def ort_providers() -> list[str]:
    """onnxruntime's available providers; empty when onnxruntime cannot be imported."""
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except Exception:  # a broken runtime install must not stop a CPU-only process
        return []


def detect() -> Device:
    """``cuda:0`` where onnxruntime offers CUDA and a GPU is actually present, else ``cpu``."""
    if "CUDAExecutionProvider" in ort_providers() and gpu_present():
        return Device("cuda", 0)
    return CPU


_lock = threading.Lock()
_current: Device | None = None


def use(device: Device | str) -> Device:
    """Set the process-wide device (a worker serves one); returns it."""
    global _current
    chosen = parse_device(device) if isinstance(device, str) else device
    with _lock:
        _current = chosen
    return chosen


def current() -> Device:
    """The process-wide device: what `use` set, else ``$PLAYHEAD_DEVICE``, else `detect`.

    Decided once, on first use; `reset` forgets the decision.
    """
    global _current
    with _lock:
        if _current is None:
            env = os.environ.get(ENV, "").strip()
            if env:
                try:
                    _current = parse_device(env)
                except InvalidDeviceError as e:
                    raise InvalidDeviceError(f"{ENV}: {e.message}") from None
            else:
                _current = detect()
        return _current


def reset() -> None:
    """Forget the process-wide device: the next `current` decides again."""
    global _current
    with _lock:
        _current = None


@contextmanager
def using(device: Device | str) -> Iterator[Device]:
    """Run a block on ``device``, then restore what was set before (tests, checks)."""
    global _current
    with _lock:
        before = _current
    try:
        yield use(device)
    finally:
        with _lock:
            _current = before


# --- onnxruntime -------------------------------------------------------------------------


Provider = str | tuple[str, dict[str, str]]


def onnx_providers(device: Device | None = None) -> list[Provider]:
    """Execution providers for ``device`` (default: `current`), best first, CPU always last.

    On a cuda device: TensorRT (unless ``PLAYHEAD_TENSORRT=0``), then CUDA, each only where
    onnxruntime has it, with the device's GPU number. On the CPU: the CPU provider alone.
    """
    dev = device or current()
    out: list[Provider] = []
    if dev.kind == "cuda":
        available = ort_providers()
        gpu = {"device_id": str(dev.ordinal)}
        if "TensorrtExecutionProvider" in available and os.environ.get(TENSORRT_ENV) != "0":
            engines = paths.home() / "tensorrt"
            out.append(
                (
                    "TensorrtExecutionProvider",
                    {
                        **gpu,
                        # engines are built per input shape, which takes seconds: keep them
                        "trt_engine_cache_enable": "True",
                        "trt_engine_cache_path": str(engines),
                        "trt_timing_cache_enable": "True",
                        "trt_timing_cache_path": str(engines),
                    },
                )
            )
        if "CUDAExecutionProvider" in available:
            out.append(("CUDAExecutionProvider", dict(gpu)))
    out.append("CPUExecutionProvider")
    return out


def _provider_name(p: Provider) -> str:
    return p if isinstance(p, str) else p[0]


def onnx_session(path: str | Path, device: Device | None = None) -> ort.InferenceSession:
    """An onnxruntime session on ``device`` (default: `current`); the CPU if the GPU fails.

    Creating a session with GPU providers can raise (missing CUDA or TensorRT libraries, an
    out-of-memory GPU): then the session is made on the CPU and a warning is logged. Where
    onnxruntime itself quietly drops a GPU provider, the warning is logged too.
    """
    import onnxruntime as ort

    providers = onnx_providers(device)
    names = [_provider_name(p) for p in providers]
    if names == ["CPUExecutionProvider"]:
        return ort.InferenceSession(str(path), providers=names)
    for p in providers:
        if isinstance(p, tuple) and p[0] == "TensorrtExecutionProvider":
            Path(p[1]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
    try:
        session = ort.InferenceSession(
            str(path),
            providers=[_provider_name(p) for p in providers],
            provider_options=[{} if isinstance(p, str) else p[1] for p in providers],
        )
    except Exception as e:
        log.warning("%s: GPU providers %s failed (%s); running on the CPU", path, names[:-1], e)
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.get_providers()
    if not any(n in got for n in names[:-1]):
        log.warning("%s: onnxruntime dropped %s; running on the CPU", path, names[:-1])
    return session


# --- LiteRT ------------------------------------------------------------------------------


@cache
def _litert_gpu_library() -> str | None:
    """The first GPU delegate library that loads, tried once per process."""
    names = [n for n in (os.environ.get(LITERT_GPU_ENV, "").strip(),) if n]
    names += LITERT_GPU_DELEGATES
    try:
        from ai_edge_litert.interpreter import load_delegate
    except Exception:
        return None
    for name in names:
        try:
            # look first: LiteRT's Delegate raises in its finaliser for a library that is absent
            if not hasattr(ctypes.CDLL(name), "tflite_plugin_create_delegate"):
                continue  # not an external-delegate plugin
            load_delegate(name)
        except Exception:  # OSError (not found), ValueError (refused), RuntimeError (platform)
            continue
        return name
    return None


def litert_delegates(device: Device | None = None) -> list[Any]:
    """LiteRT delegates for ``device`` (default: `current`): a fresh GPU delegate on a cuda
    device where a GPU delegate library loads, else ``[]`` (the interpreter's CPU kernels).

    A delegate instance belongs to one interpreter, so every call loads a new one.
    """
    dev = device or current()
    if dev.kind != "cuda":
        return []
    name = _litert_gpu_library()
    if name is None:
        return []
    from ai_edge_litert.interpreter import load_delegate

    try:
        return [load_delegate(name)]
    except Exception as e:
        log.warning("LiteRT GPU delegate %s failed to load (%s); running on the CPU", name, e)
        return []


# --- effects' declarations ---------------------------------------------------------------

_warned: set[str] = set()


def effect_devices(effect: Effect) -> tuple[str, ...]:
    """The device classes ``effect`` can use, best first: its ``devices`` declaration.

    An effect that declares nothing runs on the CPU: ``("cpu",)``. Every worker has a CPU, so
    a cpu-only effect can still run on a cuda worker (on that worker's CPU); the declaration
    says where the effect *gains* from the hardware, for routing. Classes this playhead does not
    know (a plug-in written for a later one) are skipped with a warning.
    """
    declared = getattr(effect, "devices", None)
    if declared is None:
        return ("cpu",)
    if isinstance(declared, str) or not all(isinstance(d, str) for d in declared):
        raise InvalidDeviceError(
            f"effect {effect.name!r}: devices must be a tuple of device classes, "
            f"like ('cuda', 'cpu'); got {declared!r}"
        )
    known = tuple(dict.fromkeys(d for d in declared if d in KINDS))
    unknown = [d for d in declared if d not in KINDS]
    if unknown and effect.name not in _warned:
        _warned.add(effect.name)
        log.warning("effect %r declares unknown device classes %s", effect.name, unknown)
    return known or ("cpu",)


def preferred_batch(effect: Effect, klass: str, default: int = DEFAULT_BATCH) -> int:
    """Frames per batch ``effect`` prefers on device class ``klass`` (``batch_sizes``), else
    ``default``."""
    sizes: Mapping[str, Any] | None = getattr(effect, "batch_sizes", None)
    value = sizes.get(klass) if sizes is not None else None
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidDeviceError(
            f"effect {effect.name!r}: batch_sizes[{klass!r}] must be a positive integer, "
            f"got {value!r}"
        )
    return value


# --- routing: which workers a render's jobs go to -----------------------------------------


def route(effect: Effect, classes: tuple[str, ...]) -> str:
    """The device class whose workers render ``effect``, in a fleet whose workers are of
    ``classes`` (each class has its own queue, so a job reaches only workers that can run it).

    The effect's best class the fleet has; else, for an effect that runs on a CPU, any class
    (every worker has a CPU). An effect that needs hardware the fleet lacks is refused with a
    message that says what to add.
    """
    wanted = effect_devices(effect)
    for klass in wanted:
        if klass in classes:
            return klass
    if "cpu" in wanted and classes:
        return classes[0]
    raise UnsupportedDeviceError(
        f"effect {effect.name!r} runs on {' or '.join(wanted)} workers, and this fleet has "
        f"{', '.join(classes) or 'none'}: start `playhead worker --device {wanted[0]}` workers "
        f"and list {wanted[0]!r} in the server's --device-classes"
    )


class UnsupportedDeviceError(PlayheadError, ValueError):
    status = 422
    code = "unsupported_device"


def queue_name(base: str, klass: str) -> str:
    """The queue of one device class's workers."""
    return f"{base}-{klass}"


def parse_classes(text: str) -> tuple[str, ...]:
    """``cpu,cuda`` → ("cpu", "cuda"): the device classes a fleet's workers are of."""
    classes = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    bad = [c for c in classes if c not in KINDS]
    if not classes or bad:
        raise InvalidDeviceError(
            f"expected device classes from {', '.join(KINDS)} separated by commas, got {text!r}"
        )
    return classes
