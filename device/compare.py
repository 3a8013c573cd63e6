"""Whole-model engines (edgeprune's, ONNX Runtime's, LiteRT's) timed alternately on one input.

``base.timing`` holds the alternating rounds and why they are needed; this module makes
contenders out of engines, which map an input array to outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from edgeprune.base.timing import alternate_timers, wall_clock

Engine = Callable[[np.ndarray], object]


def alternate(engines: Mapping[str, Engine], x: np.ndarray, rounds: int, runs: int) -> dict[str, list[float]]:
    """Milliseconds of every timed run per engine on ``x``: ``rounds`` x (1 warm-up + ``runs`` timed) each.

    The warm-up fills the caches and lets the previous engine's spinning threads go back to sleep.
    """
    return alternate_timers({name: wall_clock(run, x) for name, run in engines.items()}, rounds, runs, warmup=1)


def onnxruntime_engine(onnx_path: str | Path, threads: int, input_name: str = "input") -> Engine:
    """ONNX Runtime's CPU provider on ``onnx_path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {input_name: x})


def litert_engine(tflite_path: str | Path, threads: int) -> Engine:
    """LiteRT's interpreter (XNNPACK delegate, as its default resolver applies it) on a TFLite file
    with ``threads`` threads; returns the outputs in the file's order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path), num_threads=threads)
    interpreter.allocate_tensors()
    (input_index,) = (d["index"] for d in interpreter.get_input_details())
    output_indices = [d["index"] for d in interpreter.get_output_details()]

    def run(x: np.ndarray) -> list[np.ndarray]:
        interpreter.set_tensor(input_index, x)
        interpreter.invoke()
        return [interpreter.get_tensor(i).copy() for i in output_indices]

    return run
