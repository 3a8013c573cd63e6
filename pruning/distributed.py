"""Data-parallel helpers for runs started with ``torchrun`` (gloo on CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_world() -> World:
    """Join the process group that torchrun describes in the environment, if any.

    Each process then gets an equal share of the cores, so two ranks on two cores do not
    oversubscribe the machine.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(size)))
    if local_size > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_size))
    return World(rank=rank, size=size, local_size=local_size)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (so all ranks agree on a decision)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
