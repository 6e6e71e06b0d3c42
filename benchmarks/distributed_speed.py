"""Data-parallel BNN training: 1 process x 2 threads against 2 processes x 1 thread, in one run.

Both configurations train the default 784-400-400-10 network (local reparameterisation, batch
128 global, Adam 1e-3) on real MNIST for the same steps; they take turns round by round, each
round in fresh processes (``torch.multiprocessing`` with gloo on loopback, as ``torchrun``
would start them), so machine noise hits them alike. Reported: seconds per epoch (median over
rounds), the time each step spends in the gradient all-reduce (measured around
:meth:`~pyro_logits.bnn.DataParallel.sum_gradients`, so waiting for the slower process is
included) and in an all-reduce of the same 2 x 478k floats alone, and an estimate on paper of
the all-reduce against the step at 8 and 64 GPUs (the fabric is stated in ``NVLINK`` and
``INFINIBAND``; the GPU step is taken to be the measured launch-bound floor, see
:func:`overhead_step_ms`).

Run: ``python benchmarks/distributed_speed.py --data-dir DIR [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyro
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pyro_logits.bnn import BayesianMLP, BNNClassifier, DataParallel, init_data_parallel
from pyro_logits.datasets import load_mnist

BATCH = 128
HIDDEN = (400, 400)
CONFIGS = {"1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1)}
# The fabric assumed on paper: bus bandwidth (GB/s) an NCCL all-reduce reaches on a few-MB
# message, and the latency of one ring step (us), inside a node (NVLink) and between nodes
# (InfiniBand, 400 Gb/s per GPU). 64 GPUs are 8 nodes of 8, reduced hierarchically.
NVLINK = (100.0, 3.0)
INFINIBAND = (40.0, 8.0)
GPUS_PER_NODE = 8


class TimedDataParallel(DataParallel):
    """:class:`DataParallel` that records how long each gradient all-reduce takes."""

    def __init__(self, parallel: DataParallel) -> None:
        super().__init__(parallel.rank, parallel.world_size, parallel.device)
        object.__setattr__(self, "seconds", [])

    def sum_gradients(self, params: Any, loss: torch.Tensor) -> None:
        """Sum over processes as the parent does, timing the call."""
        start = time.perf_counter()
        super().sum_gradients(params, loss)
        self.seconds.append(time.perf_counter() - start)  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world_size: int, threads: int, port: int, args: Any, out: str) -> None:
    """Train ``args.steps`` steps as one process of ``world_size``; rank 0 writes its timings."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world_size),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(threads)
    x, y = load_mnist("train", data_dir=args.data_dir, progress=False)
    parallel = init_data_parallel("cpu", timeout_s=120)
    timed = TimedDataParallel(parallel) if parallel is not None else None
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    clf = BNNClassifier(BayesianMLP(784, HIDDEN, 10), kl_weight=0.1, data_parallel=timed)
    n = len(x)
    x, y = x[: args.steps * BATCH], y[: args.steps * BATCH]
    step_seconds = []
    for idx in torch.arange(len(x)).split(BATCH):
        kwargs: dict[str, Any] = {"dataset_size": n, "validate": False}
        if timed is not None:
            kwargs["shard"] = shard = timed.shard(len(idx))
            idx = idx[shard.start : shard.stop]
        start = time.perf_counter()
        clf.svi.step(x[idx], y[idx], **kwargs)
        step_seconds.append(time.perf_counter() - start)
    result: dict[str, Any] = {"step_seconds": step_seconds[args.warmup :]}
    if timed is not None:
        result["allreduce_in_step_seconds"] = timed.seconds[args.warmup :]
        store = pyro.get_param_store()
        grads = [torch.randn_like(store[name]) for name in clf.guide.param_names]
        alone = []
        for _ in range(args.steps):
            dist.barrier()
            start = time.perf_counter()
            for work in [dist.all_reduce(g, async_op=True) for g in grads]:
                work.wait()
            alone.append(time.perf_counter() - start)
        result["allreduce_alone_seconds"] = alone[args.warmup :]
        result["allreduce_floats"] = sum(g.numel() for g in grads)
        dist.destroy_process_group()
    if rank == 0:
        Path(out).write_text(json.dumps(result))


def run_config(world_size: int, threads: int, args: Any) -> dict[str, Any]:
    """One configuration in fresh processes; rank 0's timings."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        mp.spawn(
            worker,
            args=(world_size, threads, free_port(), args, out),
            nprocs=world_size,
            join=True,
        )
        return json.loads(Path(out).read_text())


def ring_allreduce_ms(megabytes: float, ranks: int, fabric: tuple[float, float]) -> float:
    """Milliseconds of a ring all-reduce: ``2 (p-1) / p`` of the data per link, ``2 (p-1)`` hops."""
    bus_gb_s, latency_us = fabric
    if ranks == 1:
        return 0.0
    share = 2 * (ranks - 1) / ranks
    return megabytes * share / bus_gb_s + 2 * (ranks - 1) * latency_us * 1e-3


def paper_estimate(floats: int, step_ms: float) -> list[dict[str, Any]]:
    """All-reduce time of ``floats`` float32 values at 8 and 64 GPUs, against a step.

    Inside a node, a ring over NVLink. Across nodes, hierarchically: a reduce-scatter and an
    all-gather inside each node (together the cost of one NVLink ring all-reduce) around a ring
    all-reduce between nodes in which each GPU carries its eighth over its own InfiniBand link.
    """
    megabytes = floats * 4 / 1e6
    rows = []
    for gpus in (8, 64):
        nodes = max(1, gpus // GPUS_PER_NODE)
        inside = ring_allreduce_ms(megabytes, min(gpus, GPUS_PER_NODE), NVLINK)
        between = ring_allreduce_ms(megabytes / GPUS_PER_NODE, nodes, INFINIBAND)
        rows.append(
            {
                "gpus": gpus,
                "nodes": nodes,
                "megabytes": megabytes,
                "allreduce_ms": inside + between,
                "step_ms": step_ms,
                "allreduce_over_step": (inside + between) / step_ms,
            }
        )
    return rows


def overhead_step_ms(args: Any) -> float:
    """Step time of the same code on a network too small to compute: the launch-bound floor.

    A GPU computes the default network's step at batch 128 in microseconds; what remains is
    the per-step work of Python, Pyro and the operator dispatch, which this measures.
    """
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    clf = BNNClassifier(BayesianMLP(784, (8, 8), 10), kl_weight=0.1)
    x, y = torch.rand(BATCH, 784), torch.randint(10, (BATCH,))
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        clf.svi.step(x, y, dataset_size=60_000, validate=False)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[args.warmup :])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables and write ``distributed_speed.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
    parser.add_argument("--out", default="runs/benchmarks", help="output directory for JSON")
    parser.add_argument("--quick", action="store_true", help="60 steps, 2 rounds (~1 min)")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default 200)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the timings")
    args = parser.parse_args(argv)
    args.steps = args.steps or (60 if args.quick else 200)
    rounds = args.rounds or (2 if args.quick else 3)
    if args.steps <= args.warmup:
        parser.error(f"--steps must exceed --warmup ({args.warmup}), got {args.steps}")
    load_mnist("train", data_dir=args.data_dir)  # fetch and verify once, before the workers

    from tqdm import tqdm

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    for _ in tqdm(range(rounds), desc="rounds (both configurations)"):
        for name, (world_size, threads) in CONFIGS.items():
            runs[name].append(run_config(world_size, threads, args))

    steps_per_epoch = math.ceil(60_000 / BATCH)
    rows = []
    for name, results in runs.items():
        per_round = [statistics.median(r["step_seconds"]) for r in results]
        row: dict[str, Any] = {
            "configuration": name,
            "seconds_per_step": statistics.median(per_round),
            "seconds_per_epoch": statistics.median(per_round) * steps_per_epoch,
            "seconds_per_step_by_round": per_round,
        }
        if "allreduce_in_step_seconds" in results[0]:
            row["allreduce_in_step_ms"] = 1e3 * statistics.median(
                statistics.median(r["allreduce_in_step_seconds"]) for r in results
            )
            row["allreduce_alone_ms"] = 1e3 * statistics.median(
                statistics.median(r["allreduce_alone_seconds"]) for r in results
            )
            row["allreduce_floats"] = results[0]["allreduce_floats"]
        rows.append(row)
    base = rows[0]["seconds_per_epoch"]
    for row in rows:
        row["ratio_to_one_process"] = row["seconds_per_epoch"] / base

    floats = next(r["allreduce_floats"] for r in rows if "allreduce_floats" in r)
    torch.set_num_threads(1)
    paper = paper_estimate(floats, overhead_step_ms(args))

    print(
        f"\nMNIST 784-{'-'.join(map(str, HIDDEN))}-10 BNN, global batch {BATCH}, {args.steps} "
        f"steps x {rounds} rounds, gloo on loopback, epoch = {steps_per_epoch} steps"
    )
    header = f"{'configuration':24} {'s/epoch':>8} {'ratio':>6} {'all-reduce ms/step':>19}"
    print(header + f" {'(alone)':>8}")
    print("-" * (len(header) + 9))
    for r in rows:
        in_step = f"{r['allreduce_in_step_ms']:.2f}" if "allreduce_in_step_ms" in r else "-"
        alone = f"{r['allreduce_alone_ms']:.2f}" if "allreduce_alone_ms" in r else "-"
        print(
            f"{r['configuration']:24} {r['seconds_per_epoch']:8.2f} "
            f"{r['ratio_to_one_process']:6.2f} {in_step:>19} {alone:>8}"
        )
    print(f"\nOn paper: ring all-reduce of {floats} float32 ({4 * floats / 1e6:.1f} MB) per step")
    print(
        f"NVLink {NVLINK[0]:.0f} GB/s, {NVLINK[1]:.0f} us; InfiniBand {INFINIBAND[0]:.0f} GB/s, "
        f"{INFINIBAND[1]:.0f} us; step = launch-bound floor {paper[0]['step_ms']:.2f} ms"
    )
    print(f"{'GPUs':>4} {'nodes':>5} {'all-reduce ms':>13} {'x step':>7}")
    for p in paper:
        print(
            f"{p['gpus']:4d} {p['nodes']:5d} {p['allreduce_ms']:13.3f} "
            f"{p['allreduce_over_step']:7.2f}"
        )
    result = {
        "rows": rows,
        "paper_estimate": paper,
        "steps": args.steps,
        "rounds": rounds,
        "warmup_steps": args.warmup,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": {"torch": torch.__version__, "pyro": pyro.__version__},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "distributed_speed.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
