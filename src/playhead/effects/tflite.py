"""Thin wrapper over an ai-edge-litert interpreter that runs a batch at once when it can."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from playhead.effects import devices

log = logging.getLogger(__name__)


def interpreter(path: Path, threads: int | None = None) -> Any:
    """An allocated interpreter for ``path`` on the process's device.

    With the delegates of `devices.litert_delegates` (a GPU delegate on a cuda device, where
    one loads); if the interpreter cannot be built or allocated with them, on the CPU.
    """
    num_threads = threads or min(4, os.cpu_count() or 1)
    delegates = devices.litert_delegates()
    if delegates:
        try:
            interp = Interpreter(
                model_path=str(path), num_threads=num_threads, experimental_delegates=delegates
            )
            interp.allocate_tensors()
            return interp
        except (RuntimeError, ValueError) as e:
            log.warning("%s: the LiteRT GPU delegate failed (%s); running on the CPU", path, e)
    interp = Interpreter(model_path=str(path), num_threads=num_threads)
    interp.allocate_tensors()
    return interp


class TFLiteModel:
    """One interpreter per model file; ``__call__`` maps ``float32[B,...]`` to the first output.

    Models are exported with batch 1; the input is resized to the batch when the graph allows
    it (one invoke per batch), else frames run one by one. Invocations are serialised: an
    interpreter is not re-entrant.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self._interp = interpreter(path, threads)
        self._input = self._interp.get_input_details()[0]
        self._outputs = self._interp.get_output_details()
        self._batch = 1
        self._batchable = True
        self._lock = threading.Lock()

    @property
    def input_hw(self) -> tuple[int, int]:
        shape = self._input["shape"]
        return int(shape[1]), int(shape[2])

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            if self._batchable and len(batch) != self._batch:
                try:
                    self._resize(len(batch))
                except (RuntimeError, ValueError):
                    self._batchable = False
                    self._resize(1)
            if self._batch == len(batch):
                return self._invoke(batch)
            parts = [self._invoke(batch[i : i + 1]) for i in range(len(batch))]
            return [np.concatenate(p) for p in zip(*parts, strict=True)]

    def _resize(self, n: int) -> None:
        shape = list(self._input["shape"])
        shape[0] = n
        self._interp.resize_tensor_input(self._input["index"], shape)
        self._interp.allocate_tensors()
        self._outputs = self._interp.get_output_details()
        self._batch = n

    def _invoke(self, batch: np.ndarray) -> list[np.ndarray]:
        self._interp.set_tensor(self._input["index"], np.ascontiguousarray(batch, np.float32))
        self._interp.invoke()
        return [self._interp.get_tensor(o["index"]) for o in self._outputs]
