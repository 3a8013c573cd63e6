"""What every frontend returns: the Relax module and the specs of its inputs and outputs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tvm
from tvm import relax

from edgeprune.base.errors import EdgepruneError


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    # "NCHW" or "NHWC" for a 4-d image tensor, as its source declares it; None otherwise
    layout: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout}

    @classmethod
    def from_json(cls, obj: dict) -> "TensorSpec":
        return cls(obj["name"], tuple(obj["shape"]), obj["dtype"], obj.get("layout"))


@dataclass
class ImportedModel:
    """A Relax module whose ``main`` takes the inputs positionally and returns the outputs."""

    mod: tvm.IRModule
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: Path
    source_kind: str  # "checkpoint", "onnx" or "tflite"
    source_sha256: str


def image_layout(shape: Sequence[int], layout: str) -> str | None:
    """``layout`` for a 4-d tensor, None for any other rank."""
    return layout if len(shape) == 4 else None


def check_shape(shape: Sequence[int], path: Path, layout: str = "NCHW") -> tuple[int, ...]:
    """A user's ``--input-shape``: 4 positive integers in the source's ``layout``."""
    dims = tuple(int(d) for d in shape)
    if len(dims) != 4 or min(dims) <= 0:
        raise EdgepruneError(f"{path}: input shape must be 4 positive integers {','.join(layout)}, got {list(shape)}")
    return dims


def sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def outputs_of(mod: tvm.IRModule, names: Sequence[str], path: Path, layout: str = "NCHW") -> list[TensorSpec]:
    """Output specs from the return type of ``main`` (a tensor or a tuple of tensors)."""
    ret = mod["main"].ret_ty
    fields = list(ret.fields) if isinstance(ret, relax.TupleType) else [ret]
    specs = []
    for i, ty in enumerate(fields):
        if not isinstance(ty, relax.TensorType) or ty.shape is None:
            raise EdgepruneError(f"{path}: output {i} is not a tensor of known shape")
        dims = []
        for d in ty.shape.values:
            if not isinstance(d, tvm.tirx.IntImm):
                raise EdgepruneError(f"{path}: output {i} has a dynamic shape {ty.shape}; give a static input shape")
            dims.append(int(d))
        name = names[i] if i < len(names) else f"output{i}"
        specs.append(TensorSpec(name, tuple(dims), str(ty.dtype), image_layout(dims, layout)))
    return specs
