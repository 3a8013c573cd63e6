"""Export a segmentation model to the ONNX file of the checkpoint directory.

The file is what every ONNX consumer (TVM's ONNX frontend, ONNX Runtime) reads: opset 17,
one NCHW float32 input named ``input`` with a static shape, one output named ``logits``,
simplified by onnxsim so that shape arithmetic is folded into constants.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence

import onnx
import torch
from torch import nn

from edgeprune.base.errors import EdgepruneError, first_line
from edgeprune.base.fileio import atomic_path

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(model: nn.Module, input_shape: Sequence[int], path: str | os.PathLike[str]) -> None:
    """Write ``model`` (in eval mode) to ``path`` atomically, simplified with onnxsim."""
    import onnxsim

    was_training = model.training
    model.eval()
    example = torch.zeros(*input_shape)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            # The TorchScript exporter is deprecated but, unlike the dynamo one, writes the
            # plain opset-17 graph with folded constants that onnxsim and TVM import cleanly.
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(
                    model,
                    (example,),
                    str(tmp),
                    opset_version=OPSET,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamo=False,
                )
            simplified, ok = onnxsim.simplify(onnx.load(str(tmp)))
            if not ok:
                raise EdgepruneError(f"{path}: onnxsim could not validate the simplified model")
            onnx.checker.check_model(simplified)
            onnx.save(simplified, str(tmp))
    except EdgepruneError:
        raise
    except Exception as exc:  # exporter errors are long; keep the first line
        raise EdgepruneError(f"{path}: ONNX export failed: {first_line(exc)}") from exc
    finally:
        model.train(was_training)
