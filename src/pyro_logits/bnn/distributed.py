"""Data-parallel training over processes with ``torch.distributed`` (gloo on CPU, NCCL on CUDA).

Run a script under ``torchrun --nproc-per-node N`` (and ``--nnodes``/``--rdzv-endpoint`` across
machines): :func:`init_data_parallel` reads what torchrun puts in the environment, and a plain
``python`` run stays single-process. How one model is trained by ``N`` processes:

- every process starts from the parameters of process 0 (broadcast), draws the same shuffle of
  the training set each epoch (the shuffling generator has one seed) and takes a contiguous
  share of every global minibatch (:meth:`DataParallel.shard`); ``batch_size`` stays the
  global batch;
- each process's loss is weighted by its share, ``B_r / B``: with the likelihood scaled by
  ``N / B_r`` for its ``B_r`` examples (the observe helper's data-set scaling) and the full KL
  on every process, ``sum_r (B_r / B) (kl_weight KL - (N / B_r) loglik_r)`` is exactly the
  single-process loss ``kl_weight KL - (N / B) loglik`` of the whole minibatch, and the sum of
  the processes' gradients (``all_reduce`` after backward, one bucket per flat param) is its
  gradient. A process whose share of a small last batch is empty computes on a stand-in row
  with weight 0;
- the sampling noise is the single process's: every process draws the noise of the whole
  minibatch and uses its rows (local reparameterisation), or the same weight sample (weight
  sampling), so the random streams stay in step on every process and with a single-process
  run. Parameters then equal a single-process run's up to the order of floating-point sums.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from pyro_logits.bnn.loss import Shard

__all__ = ["CLOSING_TIMEOUT", "DataParallel", "init_data_parallel"]

# How long the other processes wait at the end for process 0 to evaluate and write.
CLOSING_TIMEOUT = datetime.timedelta(days=7)


@dataclass(frozen=True)
class DataParallel:
    """The place of the current process in a data-parallel run.

    Attributes
    ----------
    rank, world_size : int
        This process's rank and the number of processes.
    device : torch.device
        Where this process computes (``cuda:LOCAL_RANK`` with NCCL).
    """

    rank: int
    world_size: int
    device: torch.device
    closing_group: Any = field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        """Whether this process writes the outputs (rank 0)."""
        return self.rank == 0

    def shard(self, total: int) -> Shard:
        """The contiguous share of a minibatch of ``total`` examples for the current process."""
        base, extra = divmod(total, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        stop = start + base + (self.rank < extra)
        if stop == start:  # nothing left for this process: one stand-in row, weight 0
            return Shard(0, 1, total, 0.0)
        return Shard(start, stop, total, (stop - start) / total)

    def broadcast(self, tensors: Iterable[torch.Tensor]) -> None:
        """Give every process the values of process 0, in place."""
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)

    def sum_gradients(self, params: Iterable[torch.Tensor], loss: torch.Tensor) -> None:
        """Sum the gradients of ``params`` and the value of ``loss`` over processes, in place."""
        works = [dist.all_reduce(loss, async_op=True)]
        works += [dist.all_reduce(p.grad, async_op=True) for p in params if p.grad is not None]
        for work in works:
            work.wait()

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def close(self) -> None:
        """Leave the run together: wait for every process, then destroy the process group.

        Call it once on every process after the last collective of a run that went well. A
        process that destroys its group while a peer still reads aborts the peer; after an
        error, do not call it (the others may be inside a collective and would wait for this
        one): exiting ends the run, and torchrun stops the other processes. The wait has no
        practical deadline (:data:`CLOSING_TIMEOUT`, not the run's timeout): the other
        processes wait here while process 0 evaluates and writes the results, however long
        that takes; should process 0 die meanwhile, torchrun ends them.
        """
        if self.closing_group is not None:
            dist.barrier(group=self.closing_group)
        else:
            self.barrier()
        dist.destroy_process_group()


def init_data_parallel(device: str = "cpu", *, timeout_s: float = 600.0) -> DataParallel | None:
    """Join the process group that ``torchrun`` set up; ``None`` in a single-process run.

    Parameters
    ----------
    device : {"cpu", "cuda"}
        gloo for CPU, NCCL for CUDA (each process takes GPU ``LOCAL_RANK``).
    timeout_s : float
        How long a collective waits for the other processes: a process that died ends the
        run with an error on the others after this long at most, not a hang.

    Returns
    -------
    DataParallel or None
        ``None`` unless ``WORLD_SIZE`` (set by torchrun) is above 1.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        where = torch.device("cuda", local_rank)
    else:
        where = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    # gloo, on the CPU whatever the device: its barrier has a timeout of its own
    closing = dist.new_group(backend="gloo", timeout=CLOSING_TIMEOUT)
    return DataParallel(dist.get_rank(), dist.get_world_size(), where, closing)
