"""Data-parallel BNN training: 2 gloo processes on loopback against 1 process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyro
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import assert_close

from pyro_logits.bnn import BayesianMLP, BNNClassifier, DataParallel, init_data_parallel

SCRIPT = Path(__file__).resolve().parents[1] / "models" / "bnn_mnist.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toy_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 1).long() + (x[:, 2] > 0.5).long()


def train(estimator: str, n: int, parallel: DataParallel | None) -> dict[str, torch.Tensor]:
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    clf = BNNClassifier(
        BayesianMLP(6, (16,), 3), estimator=estimator, lr=0.01, data_parallel=parallel
    )
    x, y = toy_data(n)
    clf.fit(x, y, epochs=2, batch_size=32)
    return {k: v.detach().clone() for k, v in pyro.get_param_store().items()}


def _worker(rank: int, port: int, estimator: str, n: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE="2",
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    parallel = init_data_parallel("cpu", timeout_s=60)
    assert parallel is not None and parallel.world_size == 2
    params = train(estimator, n, parallel)
    torch.save(params, f"{out}.{rank}")
    dist.destroy_process_group()


# n = 65 with batch 32: a last batch of one example, so one process has an empty share
@pytest.mark.parametrize("n", [70, 65])
@pytest.mark.parametrize("estimator", ["local-reparam", "sample-weights"])
def test_two_processes_train_the_parameters_of_one(estimator, n, tmp_path) -> None:
    out = str(tmp_path / "params")
    mp.spawn(_worker, args=(free_port(), estimator, n, out), nprocs=2, join=True)
    single = train(estimator, n, None)
    for rank in (0, 1):
        parallel = torch.load(f"{out}.{rank}", weights_only=True)
        assert set(parallel) == set(single)
        for name, value in single.items():
            # Equal up to the order of floating-point sums (float32 gradients summed over 2).
            assert_close(parallel[name], value, rtol=1e-4, atol=1e-6)


def test_shards_cover_the_batch_and_weigh_it() -> None:
    for total in (1, 2, 7, 128):
        shards = [DataParallel(r, 3, torch.device("cpu")).shard(total) for r in range(3)]
        rows = [i for s in shards if s.weight for i in range(s.start, s.stop)]
        assert rows == list(range(total))
        assert sum(s.weight for s in shards) == pytest.approx(1.0)


def test_a_single_process_run_has_no_process_group(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_data_parallel("cpu") is None


def _dying_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank)
    )
    parallel = init_data_parallel("cpu", timeout_s=5)
    assert parallel is not None
    if rank == 1:
        os._exit(3)  # dies without a word
    grad = torch.ones(3, requires_grad=True)
    grad.grad = torch.ones(3)
    try:
        parallel.sum_gradients([grad], torch.zeros(()))
    except Exception as error:  # gloo reports the lost peer or the timeout
        Path(out).write_text(type(error).__name__ + ": " + str(error)[:200])
        os._exit(0)
    os._exit(1)


def test_a_dead_process_ends_the_others_with_an_error_not_a_hang(tmp_path) -> None:
    out = tmp_path / "error.txt"
    context = mp.spawn(_dying_worker, args=(free_port(), str(out)), nprocs=2, join=False)
    for process in context.processes:
        process.join(timeout=60)
    assert all(not p.is_alive() for p in context.processes)
    assert out.read_text()  # the survivor got an error


@pytest.mark.mnist
def test_torchrun_two_processes_match_one_and_resume_in_one(mnist_dir: Path, tmp_path) -> None:
    common = [
        "--data-dir",
        str(mnist_dir),
        "--train-size",
        "2000",
        "--num-samples",
        "4",
        "--no-progress",
        "--no-baseline",
        "--eval-every",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]

    def run(command: list[str]) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stdout + result.stderr

    run([*torchrun, str(SCRIPT), *common, "--epochs", "1", "--out", str(tmp_path / "two")])
    run(
        [
            sys.executable,
            str(SCRIPT),
            *common,
            "--threads",
            "2",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "one"),
        ]
    )
    two, one = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("two", "one"))
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["test_accuracy"] == pytest.approx(one["test_accuracy"], abs=2e-3)
    assert two["test_nll"] == pytest.approx(one["test_nll"], rel=1e-4)
    # A checkpoint written by 2 processes resumes in 1, where an uninterrupted run ends.
    run(
        [
            sys.executable,
            str(SCRIPT),
            *common,
            "--threads",
            "2",
            "--epochs",
            "2",
            "--resume",
            "--out",
            str(tmp_path / "two"),
        ]
    )
    run(
        [
            sys.executable,
            str(SCRIPT),
            *common,
            "--threads",
            "2",
            "--epochs",
            "2",
            "--overwrite",
            "--out",
            str(tmp_path / "one"),
        ]
    )
    resumed, straight = (
        json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("two", "one")
    )
    assert resumed["elbo_per_epoch"] == pytest.approx(straight["elbo_per_epoch"], rel=1e-5)
    assert resumed["test_nll"] == pytest.approx(straight["test_nll"], rel=1e-4)
