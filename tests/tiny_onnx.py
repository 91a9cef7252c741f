"""Tiny ONNX models built here (no weights to fetch), for the tests of the ``onnx`` effect."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def tiny_model(path: Path, output: str = "matte") -> Path:
    """Any batch of 32x32 images: ``matte`` is the red channel, ``rgb`` the colours inverted."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])
    if output == "matte":
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 32, 32])
        starts = helper.make_tensor("s", TensorProto.INT64, [1], [0])
        ends = helper.make_tensor("e", TensorProto.INT64, [1], [1])
        axes = helper.make_tensor("a", TensorProto.INT64, [1], [1])
        nodes = [helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])]
        inits = [starts, ends, axes]
    else:
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 32, 32])
        one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
        nodes = [helper.make_node("Sub", ["one", "x"], ["y"])]
        inits = [one]
    graph = helper.make_graph(nodes, "tiny", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
