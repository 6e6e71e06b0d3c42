"""Data-parallel BNN training: 2 gloo processes on loopback against 1 process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pyro
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import REPO_ROOT, assert_close
from torch import nn

from pyro_logits.bnn import (
    BayesianMLP,
    BayesianNetwork,
    BNNClassifier,
    DataParallel,
    init_data_parallel,
)

SCRIPT = REPO_ROOT / "models" / "bnn_mnist.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toy_data(n: int, conv: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 1).long() + (x[:, 2] > 0.5).long()
    if conv:  # 1 x 6 x 6 images: the features along the first row, noise below
        x = torch.cat([x, torch.rand(n, 30, generator=g)], dim=1).reshape(n, 1, 6, 6)
    return x, y


def toy_model(conv: bool) -> BayesianNetwork:
    if not conv:
        return BayesianMLP(6, (16,), 3)
    layers = (nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3))
    return BayesianNetwork(nn.Sequential(*layers), input_shape=(1, 6, 6))


def train(
    estimator: str,
    n: int,
    parallel: DataParallel | None,
    *,
    checkpoint: str | None = None,
    conv: bool = False,
) -> dict[str, torch.Tensor]:
    """Two epochs; with ``checkpoint``, the second by a new classifier resumed from the first."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)

    def classifier() -> BNNClassifier:
        model = toy_model(conv)
        return BNNClassifier(model, estimator=estimator, lr=0.01, data_parallel=parallel)

    clf = classifier()
    x, y = toy_data(n, conv)
    if checkpoint is not None:
        clf.fit(x, y, epochs=1, batch_size=32)
        if parallel is None or parallel.is_main:
            clf.save(checkpoint)
        if parallel is not None:
            parallel.barrier()
        pyro.clear_param_store()
        pyro.set_rng_seed(123)  # the checkpoint's random state must win
        clf = classifier()
        clf.load(checkpoint)
    clf.fit(x, y, epochs=2, batch_size=32)
    return {k: v.detach().clone() for k, v in pyro.get_param_store().items()}


def _join(rank: int, port: int) -> DataParallel:
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
    return parallel


def _leave(parallel: DataParallel) -> None:
    """Tear down together, then exit without the interpreter's finalisation.

    A process that leaves while its peer still reads aborts gloo; and gloo's worker threads
    can still hold tensors of finished async all-reduces when the interpreter finalises, whose
    release then aborts the process (SIGABRT, "terminate called without an active
    exception") after its results are written. ``os._exit`` skips that finalisation.
    """
    parallel.close()
    assert not dist.is_initialized()
    os._exit(0)


def _worker(rank: int, port: int, estimator: str, n: int, out: str, conv: bool) -> None:
    parallel = _join(rank, port)
    torch.save(train(estimator, n, parallel, conv=conv), f"{out}.{rank}")
    _leave(parallel)


def _resume_worker(rank: int, port: int, out: str) -> None:
    parallel = _join(rank, port)
    straight = train("local-reparam", 70, parallel)
    resumed = train("local-reparam", 70, parallel, checkpoint=f"{out}.pt")
    torch.save({"straight": straight, "resumed": resumed}, f"{out}.{rank}")
    _leave(parallel)


# n = 65 with batch 32: a last batch of one example, so one process has an empty share
@pytest.mark.parametrize(
    "estimator, n, conv",
    [
        ("local-reparam", 70, False),
        ("local-reparam", 65, False),
        ("sample-weights", 70, False),
        ("sample-weights", 65, False),
        ("local-reparam", 65, True),  # noise of (N, C, H, W) outputs, split by rows
        ("sample-weights", 65, True),
        ("flipout", 65, True),  # one perturbation, signs for the whole batch split by rows
    ],
)
def test_two_processes_train_the_parameters_of_one(estimator, n, conv, tmp_path) -> None:
    out = str(tmp_path / "params")
    mp.spawn(_worker, args=(free_port(), estimator, n, out, conv), nprocs=2, join=True)
    single = train(estimator, n, None, conv=conv)
    for rank in (0, 1):
        parallel = torch.load(f"{out}.{rank}", weights_only=True)
        assert set(parallel) == set(single)
        for name, value in single.items():
            # Equal up to the order of floating-point sums (float32 gradients summed over 2).
            assert_close(parallel[name], value, rtol=1e-4, atol=1e-6)


def test_two_processes_resume_bit_identically_in_two(tmp_path) -> None:
    out = str(tmp_path / "run")
    mp.spawn(_resume_worker, args=(free_port(), out), nprocs=2, join=True)
    for rank in (0, 1):
        runs = torch.load(f"{out}.{rank}", weights_only=True)
        for name, value in runs["straight"].items():
            assert torch.equal(runs["resumed"][name], value), name


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


def script(*flags: str, prefix: tuple[str, ...] = (sys.executable,)) -> list[str]:
    """The command line of models/bnn_mnist.py (after ``prefix``, e.g. torchrun), quiet."""
    return [*prefix, str(SCRIPT), "--no-progress", "--no-baseline", "--eval-every", "0", *flags]


def run_script(*flags: str, prefix: tuple[str, ...] = (sys.executable,)) -> None:
    """Run models/bnn_mnist.py with ``flags`` and check that it succeeds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = script(*flags, prefix=prefix)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


TORCHRUN = (sys.executable, "-m", "torch.distributed.run")


@pytest.fixture(scope="module")
def small_run(mnist_dir: Path) -> tuple[str, ...]:
    """Flags of a short run on a real-MNIST subset."""
    return ("--data-dir", str(mnist_dir), "--train-size", "2000", "--num-samples", "4")


@pytest.fixture(scope="module")
def one_process_epoch(small_run, tmp_path_factory) -> dict:
    """Metrics of one epoch of the small run in one process (2 threads)."""
    out = tmp_path_factory.mktemp("one")
    run_script(*small_run, "--threads", "2", "--epochs", "1", "--out", str(out))
    return metrics(out)


@pytest.mark.mnist
def test_torchrun_two_processes_match_one_and_resume_in_one(
    small_run, one_process_epoch, tmp_path
) -> None:
    two = tmp_path / "two"
    run_script(
        *small_run,
        "--epochs",
        "1",
        "--out",
        str(two),
        prefix=(*TORCHRUN, "--standalone", "--nproc-per-node", "2"),
    )
    assert metrics(two)["world_size"] == 2 and one_process_epoch["world_size"] == 1
    assert metrics(two)["test_accuracy"] == pytest.approx(
        one_process_epoch["test_accuracy"], abs=2e-3
    )
    assert metrics(two)["test_nll"] == pytest.approx(one_process_epoch["test_nll"], rel=1e-4)
    # A checkpoint written by 2 processes resumes in 1, where an uninterrupted run ends.
    one = tmp_path / "one"
    run_script(*small_run, "--threads", "2", "--epochs", "2", "--resume", "--out", str(two))
    run_script(*small_run, "--threads", "2", "--epochs", "2", "--out", str(one))
    resumed, straight = metrics(two), metrics(one)
    assert resumed["elbo_per_epoch"] == pytest.approx(straight["elbo_per_epoch"], rel=1e-5)
    assert resumed["test_nll"] == pytest.approx(straight["test_nll"], rel=1e-4)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair: ``[(namespace, interface, address)] * 2``."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("network namespaces need root and iproute2's ip")
    tag = f"pl{os.getpid() % 100000}"
    hosts = [(f"{tag}h{i}", f"{tag}v{i}", f"10.231.{os.getpid() % 250}.{i + 1}") for i in (0, 1)]
    try:
        for namespace, _, _ in hosts:
            _ip("netns", "add", namespace)
        (ns0, if0, _), (ns1, if1, _) = hosts
        _ip("link", "add", if0, "netns", ns0, "type", "veth", "peer", "name", if1, "netns", ns1)
        for namespace, interface, address in hosts:
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", interface)
            _ip("-n", namespace, "link", "set", interface, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as error:
        for namespace, _, _ in hosts:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {error.stderr.decode().strip()}")
    yield hosts
    for namespace, _, _ in hosts:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@pytest.mark.mnist
def test_two_hosts_train_the_model_of_one_process(
    two_hosts, small_run, one_process_epoch, tmp_path
) -> None:
    """Two "machines" (network namespaces), one process each, torchrun's multi-node flags."""
    master = two_hosts[0][2]
    outs = [tmp_path / f"host{i}" for i in (0, 1)]
    procs = []
    for rank, (namespace, interface, _) in enumerate(two_hosts):
        torchrun = (
            *("ip", "netns", "exec", namespace, *TORCHRUN),
            *("--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1"),
            *("--master-addr", master, "--master-port", "29500"),
        )
        command = script(*small_run, "--epochs", "1", "--out", str(outs[rank]), prefix=torchrun)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": interface}
        procs.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        )
    logs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    assert metrics(outs[0])["world_size"] == 2
    assert metrics(outs[0])["test_nll"] == pytest.approx(one_process_epoch["test_nll"], rel=1e-4)
    assert not outs[1].exists() or not any(outs[1].iterdir())  # only process 0 writes


@pytest.mark.mnist
def test_an_evaluation_longer_than_the_timeout_still_writes_the_results(
    mnist_dir: Path, tmp_path: Path
) -> None:
    # Process 0 evaluates for several seconds after training while process 1 waits to close:
    # the closing wait is not bound by --dist-timeout, so the run ends well, with its results.
    out = tmp_path / "run"
    command = script(
        *("--data-dir", str(mnist_dir), "--train-size", "512", "--test-size", "5000"),
        *("--epochs", "1", "--num-samples", "32", "--dist-timeout", "3", "--out", str(out)),
        prefix=(*TORCHRUN, "--standalone", "--nproc-per-node", "2"),
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    written = metrics(out)
    assert written["world_size"] == 2 and written["eval_seconds"] > 3
    assert (out / "shift_test.png").exists()
