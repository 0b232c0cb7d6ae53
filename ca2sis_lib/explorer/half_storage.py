"""Store an ONNX graph's float32 weights as float16 where that loses nothing.

The shipped toy models keep their weights in float16 (``ca2sis_lib/shipped.py``) and compute in
float32 after loading, so most float32 initializers of an exported graph are float16 values
widened. Each such initializer is stored as float16 and widened back by a ``Cast`` node at the
start of the graph: the graph computes with exactly the float32 weights torch uses, from half the
bytes. Initializers that are not exact float16 values (constants the exporter folded: SEAN's
spectral norms σ, by which the graph divides the float16 weights, or its blend weights' sigmoids)
stay float32, as do tiny ones. onnxruntime folds the casts once, when a session is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

HALF_SUFFIX = "__float16"


@dataclass
class HalfStorageReport:
    """What :func:`store_weights_in_half` did: float32 initializers converted and kept, in bytes."""

    halved: int = 0
    halved_bytes: int = 0  # their float32 size before
    kept: int = 0
    kept_bytes: int = 0


def is_exact_half(values: np.ndarray) -> bool:
    """Whether every float32 value survives a round trip through float16 bit for bit (NaNs excluded)."""
    finite = np.isfinite(values).all()
    return bool(finite and np.array_equal(values.astype(np.float16).astype(np.float32), values))


def store_weights_in_half(model: Any, min_elements: int = 16) -> HalfStorageReport:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; initializers smaller than ``min_elements`` stay as they are.

    The graph's outputs are unchanged to the bit: a widened float16 value is the float32 it came from.
    """
    import onnx
    from onnx import helper, numpy_helper

    report = HalfStorageReport()
    graph = model.graph
    casts = []
    kept = []
    for init in graph.initializer:
        values = numpy_helper.to_array(init) if init.data_type == onnx.TensorProto.FLOAT else None
        if values is None or values.size < min_elements or not is_exact_half(values):
            if values is not None:
                report.kept += 1
                report.kept_bytes += values.nbytes
            kept.append(init)
            continue
        half = numpy_helper.from_array(values.astype(np.float16), init.name + HALF_SUFFIX)
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=f"widen_{init.name}"))
        report.halved += 1
        report.halved_bytes += values.nbytes
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)  # the casts first: the node list stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    return report
