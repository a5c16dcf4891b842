"""Training on several processes with PyTorch's DistributedDataParallel, as ``torchrun`` launches them.

``torchrun --nproc_per_node N emotion-train ...`` (or across nodes with ``--nnodes``/``--rdzv-*``) sets
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; ``init_from_env`` then joins the process group (NCCL for
CUDA training, gloo on CPUs). In ``train.trainer.fit`` each process trains on its shard of every
epoch (``DistributedSampler``, reshuffled per epoch from the run's seed), DDP averages the
gradients, and the per-process batch is the recipe's batch divided by the number of processes, so
a recipe means the same thing on 1 or N processes. Only rank 0 writes (checkpoints, logs, models,
results: ``is_main``), shows progress, and the others wait for it where they read what it wrote
(``barrier``). Independent jobs (the folds of a cross-validation) are split across the processes
instead, each trained alone inside ``solo()``. Without ``WORLD_SIZE`` > 1 nothing here does
anything: single-process runs are unchanged.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

_solo = False   # inside ``solo()``: this process works alone (its own CV fold), as if single-process


def _active() -> bool:
    return not _solo and dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def rank() -> int:
    return dist.get_rank() if _active() else 0


def process_group_rank() -> tuple[int, int]:
    """(rank, world size) of the process group, ``solo`` or not: which share of independent jobs is ours."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextmanager
def solo() -> Iterator[None]:
    """Inside, this process trains and writes on its own (no DDP): for jobs split across processes (CV folds)."""
    global _solo
    previous, _solo = _solo, True
    try:
        yield
    finally:
        _solo = previous


def is_main() -> bool:
    """Whether this process writes files and shows progress (rank 0, or the only process)."""
    return rank() == 0


def quiet_unless_main() -> None:
    """Under torchrun, silence stdout on every process but rank 0 (tables and summaries print once)."""
    if int(os.environ.get("RANK", "0")) > 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the life of the process)


def init_from_env(device: str = "cpu") -> None:
    """Join the process group torchrun describes in the environment (no-op for a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    atexit.register(shutdown)


def local_device(device: str) -> str:
    """``cuda`` becomes this process's GPU (``cuda:LOCAL_RANK``) when distributed; other devices stay."""
    if device == "cuda" and world_size() > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def barrier() -> None:
    """Wait for every process of the group (a no-op when single-process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_sum(*values: float) -> list[float]:
    """The sums over every process of ``values`` (themselves when single-process)."""
    if world_size() == 1:
        return list(values)
    total = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(total)
    return total.tolist()


def broadcast_value(value: float) -> float:
    """Rank 0's ``value`` on every process (so that all take the same decisions)."""
    if world_size() == 1:
        return value
    box = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(box, src=0)
    return float(box.item())


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
