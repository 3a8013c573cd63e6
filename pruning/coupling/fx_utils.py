"""Reading ``torch.fx`` nodes: shapes from ``ShapeProp`` metadata, arguments, axes, indices, names."""

from __future__ import annotations

from typing import Any

from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata


def shape(node: Any) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if isinstance(meta, TensorMetadata) else ()


def is_tensor_output(node: fx.Node) -> bool:
    meta = node.meta.get("tensor_meta")
    return isinstance(meta, TensorMetadata) or (
        isinstance(meta, (tuple, list)) and any(isinstance(m, TensorMetadata) for m in meta)
    )


def has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))


def op_location(node: fx.Node) -> str:
    """``reshape in trans.0.attn``: the op and the module whose forward calls it."""
    op = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    stack = node.meta.get("nn_module_stack") or {}
    path = next(reversed(stack.values()))[0] if stack else ""
    return f"{op} in {path}" if path else f"{op} in forward"


def axis(dim: int, rank: int) -> int:
    return dim + rank if dim < 0 else dim


def arg(node: fx.Node, position: int, name: str, default: Any) -> Any:
    """An argument given by position (counting the tensor) or by keyword."""
    if name in node.kwargs:
        return node.kwargs[name]
    return node.args[position] if len(node.args) > position else default


def index_at(index: Any, dim: int, rank: int) -> tuple[Any, int]:
    """The index applied to axis ``dim`` and how many axes before it the indexing drops."""
    items = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(item, (int, slice, type(Ellipsis))) for item in items):
        return None, 0  # new axes, tensors, traced values
    if Ellipsis in items:
        e = items.index(Ellipsis)
        items = items[:e] + (slice(None),) * (rank - len(items) + 1) + items[e + 1 :]
    at = items[dim] if dim < len(items) else slice(None)
    return at, sum(isinstance(item, int) for item in items[:dim])
