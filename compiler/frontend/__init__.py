"""Import a model into a Relax IRModule with static shapes and its weights as constants.

Three sources, one module each: a checkpoint directory (``checkpoint``: ``torch.export`` and
TVM's exported-program frontend), an ONNX file (``onnx_file``: onnxsim, then TVM's ONNX
frontend) and a TFLite file (``tflite_file``: TVM's TFLite frontend with edgeprune's operators,
``tflite_ops``, then NHWC to NCHW). All give modules in NCHW with the source's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeprune.base.errors import EdgepruneError
from edgeprune.compiler.frontend.checkpoint import import_checkpoint
from edgeprune.compiler.frontend.model import ImportedModel, TensorSpec, check_shape
from edgeprune.compiler.frontend.onnx_file import import_onnx
from edgeprune.compiler.frontend.tflite_file import import_tflite, is_tflite


def import_model(src: str | Path, input_shape: Sequence[int] | None = None) -> ImportedModel:
    """Import a checkpoint directory, an ONNX or a TFLite file; ``input_shape`` (in the
    source's layout: NCHW, NHWC for TFLite) overrides the stored one."""
    path = Path(src)
    if path.is_dir():
        kind = "checkpoint"
    elif path.is_file():
        try:
            kind = "tflite" if is_tflite(path) else "onnx"
        except OSError as exc:
            raise EdgepruneError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    else:
        raise EdgepruneError(f"{path}: no such file or checkpoint directory")
    shape = check_shape(input_shape, path, "NHWC" if kind == "tflite" else "NCHW") if input_shape is not None else None
    return {"checkpoint": import_checkpoint, "onnx": import_onnx, "tflite": import_tflite}[kind](path, shape)


__all__ = ["ImportedModel", "TensorSpec", "import_model"]
