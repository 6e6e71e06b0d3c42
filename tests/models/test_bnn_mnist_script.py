"""End-to-end runs of ``models/bnn_mnist.py`` with tiny settings, in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pyro
import pytest
import torch
from helpers import REPO_ROOT, interruptible, load_script

from pyro_logits.bnn import BayesianMLP, BayesianNetwork, BNNClassifier
from pyro_logits.bnn.baseline import lenet
from pyro_logits.datasets import CORRUPTIONS, load_mnist, random_elastic, random_shift
from pyro_logits.runs import read_checkpoint, write_checkpoint

SCRIPT = REPO_ROOT / "models" / "bnn_mnist.py"
TINY = ["--train-size", "2000", "--num-samples", "4", "--threads", "2", "--no-progress"]


def _run(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LogitsWarning" not in result.stderr
    return result


@pytest.mark.mnist
def test_script_trains_evaluates_and_writes_its_outputs(mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _run(
        "--data-dir", mnist_dir, "--out", out, "--epochs", "1", "--samples-curve", "5", *TINY
    )
    assert {p.name for p in out.iterdir()} == {
        "metrics.json",
        "reliability.png",
        "entropy_hist.png",
        "shift_test.png",
        "checkpoint.pt",
        "samples_curve.png",
    }
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "test_nll", "test_ece", "test_brier", "config", "versions"):
        assert key in metrics
    assert set(metrics["ood_auroc"]) == {"rotated", "noise", "mean"}
    for name, scores in metrics["ood_detection"].items():
        assert scores["auroc"] == metrics["ood_auroc"][name]
        assert set(scores) == {"auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr"}
        assert all(0 <= value <= 1 for value in scores.values())
    assert 0 <= metrics["test_ece_adaptive"] <= 1
    curve = metrics["samples_curve"]
    assert [row["samples"] for row in curve] == [1, 2, 4, 5]
    assert all(row["seconds"] > 0 and 0 <= row["ece"] <= 1 for row in curve)
    assert "OOD AUPR in / out, FPR@95 (noise)" in result.stdout
    assert len(metrics["seconds_per_epoch"]) == 1
    assert metrics["seconds_per_epoch_ratio_to_baseline"] > 0
    assert metrics["config"]["train_size"] == 2000 and metrics["config"]["num_samples"] == 4
    assert 0.5 < metrics["test_accuracy"] <= 1
    assert "epoch   1/1" in result.stdout and "test accuracy" in result.stdout
    assert set(metrics["shift_test"]) == {"clean", *CORRUPTIONS}
    assert set(metrics["shift_test"]["inversion"]) == {"bnn"}  # no trained plain MLP
    assert set(metrics["shift_test"]["inversion"]["bnn"]) == {
        "accuracy",
        "nll",
        "ece",
        "ece_adaptive",
    }
    assert metrics["shift_test_nll_difference"] == {}
    layers = metrics["posterior_layers"]
    assert [layer["site"] for layer in layers] == ["layers.0", "layers.1", "layers.2"]
    assert sum(layer["weights"] for layer in layers) == 785 * 400 + 401 * 400 + 401 * 10
    assert "posterior by layer" in result.stdout
    for png in ("reliability.png", "entropy_hist.png", "shift_test.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.mnist
def test_resumed_script_run_ends_like_an_uninterrupted_one(mnist_dir: Path, tmp_path: Path) -> None:
    common = ["--data-dir", mnist_dir, *TINY, "--no-baseline"]
    _run(*common, "--out", tmp_path / "straight", "--epochs", "2")
    _run(*common, "--out", tmp_path / "resumed", "--epochs", "1")
    result = _run(*common, "--out", tmp_path / "resumed", "--epochs", "2", "--resume")
    assert "resumed from" in result.stdout
    straight, resumed = (
        json.loads((tmp_path / name / "metrics.json").read_text())
        for name in ("straight", "resumed")
    )
    for key in ("elbo_per_epoch", "test_accuracy", "test_nll", "test_ece", "ood_auroc"):
        assert straight[key] == resumed[key], key

    # A checkpoint is only continued with the flags that wrote it.
    refused = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *map(str, common),
            "--out",
            str(tmp_path / "resumed"),
            "--epochs",
            "3",
            "--lr",
            "0.01",
            "--resume",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode != 0
    assert "'lr': (0.001, 0.01)" in refused.stderr


@pytest.mark.mnist
def test_kl_warmup_is_a_training_flag_and_older_checkpoints_resume_without_it(
    mnist_dir: Path, tmp_path: Path
) -> None:
    common = ["--data-dir", mnist_dir, *TINY, "--test-size", "500", "--no-baseline"]
    common += ["--eval-every", "0", "--epochs", "1"]
    warm = [*common, "--kl-warmup", "3"]
    _run(*warm, "--out", tmp_path / "warm")
    _run(*common, "--out", tmp_path / "cold")
    warm_run, cold_run = (
        json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("warm", "cold")
    )
    assert warm_run["config"]["kl_warmup"] == 3 and cold_run["config"]["kl_warmup"] == 0
    # epoch 1 weighs the KL by a third: a higher ELBO than the same run without warm-up
    assert warm_run["elbo_per_epoch"][0] > cold_run["elbo_per_epoch"][0]

    # A checkpoint written before the flag existed has no kl_warmup: it used none.
    checkpoint = tmp_path / "cold" / "checkpoint.pt"
    pyro.clear_param_store()
    clf = BNNClassifier(BayesianMLP(784, (400, 400), 10))
    extra = clf.load(checkpoint)
    del extra["config"]["kl_warmup"]
    clf.save(checkpoint, extra=extra)
    again = ["--out", str(tmp_path / "cold"), "--epochs", "2", "--resume"]
    refused = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, warm), *again],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode != 0 and "'kl_warmup': (0, 3)" in refused.stderr
    assert "resumed from" in _run(*common, *again).stdout


@pytest.mark.mnist
def test_validation_holds_out_the_last_training_images_in_the_test_sets_place(
    mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script(SCRIPT, "bnn_mnist_script", monkeypatch)
    train, train_labels = load_mnist("train", data_dir=mnist_dir)
    args = script.parse_args(["--data-dir", str(mnist_dir), "--validation", "400"])
    x, y, x_held, y_held = script._load_data(args, torch.device("cpu"))
    assert torch.equal(x, train[:59_600]) and torch.equal(y, train_labels[:59_600])
    assert torch.equal(x_held, train[59_600:]) and torch.equal(y_held, train_labels[59_600:])
    sizes = ["--validation", "400", "--test-size", "100", "--train-size", "50"]
    args = script.parse_args(["--data-dir", str(mnist_dir), *sizes])
    x, _, x_held, _ = script._load_data(args, torch.device("cpu"))
    assert torch.equal(x, train[:50]) and torch.equal(x_held, train[59_600:59_700])

    out = tmp_path / "run"
    flags = ["--arch", "lenet", "--validation", "400", "--test-size", "300", "--train-size", "500"]
    result = _run(
        "--data-dir", mnist_dir, "--out", out, "--epochs", "1", *flags, *TINY[2:], "--elastic", "34"
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "validation: the last 400 training images"
    assert re.search(r"scored on +validation: the last 400 training images", result.stdout)
    assert re.search(r"held-out accuracy +\d+\.\d\d%", result.stdout)
    assert "test accuracy" not in result.stdout
    assert metrics["config"]["validation"] == 400 and metrics["config"]["elastic"] == 34.0


def test_training_images_are_shifted_then_elastically_distorted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script(SCRIPT, "bnn_mnist_script", monkeypatch)
    images = torch.rand(50, 784, generator=torch.Generator().manual_seed(0))
    args = script.parse_args(["--arch", "lenet", "--elastic", "20", "--shift", "2"])
    out = script._augment(args, images, torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(1)
    expected = random_elastic(random_shift(images, 2, generator=generator), 20, generator=generator)
    assert torch.equal(out, expected)
    assert script.parse_args(["--arch", "lenet"]).elastic == 0  # off unless asked


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--train-size", "-1"], "argument --train-size: expected an integer >= 1 but got '-1'"),
        (["--train-size", "0"], "argument --train-size: expected an integer >= 1 but got '0'"),
        (["--kl-weight", "-1"], "argument --kl-weight: expected a finite number > 0"),
        (["--kl-weight", "nan"], "argument --kl-weight: expected a finite number > 0"),
        (["--kl-weight", "inf"], "argument --kl-weight: expected a finite number > 0"),
        (["--init-scale", "inf"], "argument --init-scale: expected a finite number > 0"),
        (["--threads", "0"], "argument --threads: expected an integer >= 1 but got '0'"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0 but got '-1'"),
        (["--resume", "--overwrite"], "--resume and --overwrite contradict each other"),
        (["--prior-scale", "he", "0.1"], "--prior-scale he stands alone"),
        (["--prior-scale", "hi"], "argument --prior-scale: expected a finite number > 0"),
        (["--data-dir", "/no/mnist/here"], "--data-dir /no/mnist/here is not a directory"),
        (["--validation", "60000"], "--validation must leave training images: below 60000"),
        (["--validation", "5000", "--train-size", "56000"], "--train-size must be at most 55000"),
        (["--elastic", "-3"], "argument --elastic: expected a finite number >= 0"),
    ],
)
def test_bad_flags_are_usage_errors_before_any_data_is_read(flags, message, tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--data-dir",
            str(tmp_path / "none"),
            *flags,
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_defaults_follow_the_architecture_and_given_flags_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script(SCRIPT, "bnn_mnist_script", monkeypatch)
    names = ("epochs", "batch_size", "lr", "lr_decay", "kl_weight", "shift", "prior_scale")
    names += ("estimator", "average_last")

    def parsed(*flags: str) -> tuple[object, ...]:
        args = script.parse_args([*flags, "--out", str(tmp_path / "run")])
        return tuple(getattr(args, name) for name in names)

    mlp, lenet = ([0.2], "local-reparam", 0), (["he"], "flipout", 3)
    assert parsed() == (30, 128, 1e-3, 0.95, 0.1, 0, *mlp)
    assert parsed("--arch", "lenet") == (15, 64, 3e-3, 0.85, 0.01, 2, *lenet)
    assert parsed("--arch", "lenet", "--lr", "0.01", "--shift", "0", "--batch-size", "128") == (
        (15, 128, 0.01, 0.85, 0.01, 0, *lenet)
    )
    assert parsed("--epochs", "3", "--kl-weight", "1") == (3, 128, 1e-3, 0.95, 1.0, 0, *mlp)
    assert parsed("--arch", "lenet", "--prior-scale", "0.2", "--estimator", "local-reparam") == (
        (15, 64, 3e-3, 0.85, 0.01, 2, [0.2], "local-reparam", 3)
    )
    assert parsed("--prior-scale", "he")[-3:] == (["he"], "local-reparam", 0)
    assert parsed("--arch", "lenet", "--average-last", "0")[-1] == 0


def test_an_earlier_run_is_not_overwritten_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"test_accuracy": 0.98}')
    (out / "checkpoint.pt").write_bytes(b"an earlier run's checkpoint")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--data-dir", str(tmp_path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("bnn_mnist.py: error: --out ")  # the reason, not the usage
    assert "holds an earlier run (metrics.json, checkpoint.pt)" in result.stderr
    assert "--resume" in result.stderr and "--overwrite" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.mnist
def test_a_corrupt_checkpoint_ends_the_run_with_one_line(mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"")
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--data-dir",
            str(mnist_dir),
            *TINY,
            "--out",
            str(out),
            "--resume",
            "--epochs",
            "1",
            "--no-baseline",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "checkpoint" in result.stderr and "is empty" in result.stderr


@pytest.mark.mnist
def test_lenet_run_compares_with_a_plain_lenet_and_resumes_exactly(
    mnist_dir: Path, tmp_path: Path
) -> None:
    common = [
        *("--data-dir", mnist_dir, "--arch", "lenet", "--shift", "2", "--train-size", "600"),
        *("--test-size", "300", "--num-samples", "2", "--shift-test-samples", "2"),
        *("--threads", "2", "--no-progress", "--eval-every", "0"),
    ]
    result = _run(*common, "--out", tmp_path / "straight", "--epochs", "2")
    assert "plain LeNet" in result.stdout and "shift test" in result.stdout
    _run(*common, "--out", tmp_path / "resumed", "--epochs", "1")
    _run(*common, "--out", tmp_path / "resumed", "--epochs", "2", "--resume")
    straight, resumed = (
        json.loads((tmp_path / name / "metrics.json").read_text())
        for name in ("straight", "resumed")
    )
    assert straight["config"]["arch"] == "lenet" and straight["config"]["shift"] == 2
    assert straight["baseline_network"] == (
        "plain LeNet (trained alongside from the Bayesian net's initial means, same Adam schedule)"
    )
    assert set(straight["shift_test"]["translation"]) == {"bnn", "plain"}
    # Each corruption's paired NLL difference of the two networks, with its interval.
    differences = straight["shift_test_nll_difference"]
    assert set(differences) == {"clean", *CORRUPTIONS}
    for name, diff in differences.items():
        nets = straight["shift_test"][name]
        assert diff["mean"] == pytest.approx(nets["bnn"]["nll"] - nets["plain"]["nll"], abs=1e-6)
        assert diff["low"] < diff["mean"] < diff["high"]
    assert re.search(r"gaussian_blur .* NLL bnn - plain [+-]\d\.\d{4} \[", result.stdout)
    # The shifted images, the Bayesian and the plain network all continue where they stopped.
    for key in ("elbo_per_epoch", "test_nll", "shift_test", "shift_test_nll_difference"):
        assert straight[key] == resumed[key], key
    # The plain LeNet trains with the run's Adam rate, decayed per epoch as the Bayesian one's.
    model = BayesianNetwork(lenet(), input_shape=(1, 28, 28), prior_scale="he")
    clf = BNNClassifier(model, estimator="flipout")
    extra = clf.load(tmp_path / "resumed" / "checkpoint.pt")
    lr = extra["plain"]["optimizer"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(3e-3 * 0.85**2, rel=1e-12)
    # Both networks predict with their weights averaged over the steps of the last 3 epochs
    # (here both epochs, 10 steps each), carried over the resume.
    assert straight["config"]["average_from"] == 1
    assert clf.average.count == 20
    assert extra["plain"]["average"]["count"] == 20


@pytest.mark.mnist
def test_plain_lenet_starts_from_the_bayesian_nets_initial_means(
    mnist_dir: Path, tmp_path: Path
) -> None:
    # With a learning rate of 1e-12 neither network moves from where it started.
    _run(
        *("--data-dir", mnist_dir, "--arch", "lenet", "--train-size", "256", "--test-size", "100"),
        *("--num-samples", "2", "--shift-test-samples", "2", "--epochs", "1", "--lr", "1e-12"),
        *("--threads", "2", "--no-progress", "--eval-every", "0", "--out", tmp_path / "run"),
    )
    model = BayesianNetwork(lenet(), input_shape=(1, 28, 28), prior_scale="he")
    clf = BNNClassifier(model, estimator="flipout")
    extra = clf.load(tmp_path / "run" / "checkpoint.pt")
    plain = lenet()
    plain.load_state_dict(extra["plain"]["net"])
    means = lenet()
    model.load_into(means, model.unflatten(clf.guide.posterior()[0].detach()))
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(value, means.state_dict()[name], rtol=0, atol=1e-9)


@pytest.mark.mnist
def test_plain_lenet_follows_the_seed(seed_runs: list[Path]) -> None:
    # Unshifted images: only the seed can make the two plain networks differ.
    plain = [
        json.loads((run / "metrics.json").read_text())["shift_test"]["clean"]["plain"]
        for run in seed_runs[:3]
    ]
    assert plain[0] != plain[1]
    assert plain[1] == plain[2]  # and one seed gives one plain network


@pytest.mark.mnist
def test_a_lenet_checkpoint_without_the_plain_nets_state_is_refused(
    mnist_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    flags = [
        *("--data-dir", mnist_dir, "--arch", "lenet", "--train-size", "256", "--test-size", "100"),
        *("--num-samples", "2", "--shift-test-samples", "2", "--threads", "2", "--no-progress"),
        *("--eval-every", "0", "--out", out),
    ]
    _run(*flags, "--epochs", "1")
    state = read_checkpoint(out / "checkpoint.pt", ())
    del state["extra"]["plain"]
    write_checkpoint(out / "checkpoint.pt", state)  # whole, with a valid digest
    resumed = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, flags), "--epochs", "2", "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr
    assert "the state of the plain LeNet trained alongside" in resumed.stderr
    assert "resume with --no-baseline" in resumed.stderr


BLOCK_MATPLOTLIB = """
import sys


class _NoMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoMatplotlib())
"""


@pytest.mark.parametrize("script", ["bnn_mnist.py", "vae_mnist.py"])
def test_a_missing_plotting_module_stops_the_run_before_it_starts(
    script: str, tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK_MATPLOTLIB)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT.parent / script),
            "--data-dir",
            str(tmp_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "Expected the module 'matplotlib' (for the plots and progress bars of the run) but it "
        "cannot be imported; pip install matplotlib, or pip install 'pyro-logits[examples]'."
    ).replace("plots", "plot" if script == "vae_mnist.py" else "plots")
    assert not out.exists()  # nothing trained, nothing written


def test_a_refused_resume_is_refused_before_any_data_is_read(tmp_path: Path) -> None:
    # The data dir holds no MNIST: a resume that read the data first would fail on it.
    out = tmp_path / "run"
    clf = BNNClassifier(BayesianMLP(784, (16,), 10))
    config = {"batch_size": 64, "hidden": [16], "seed": 3}
    extra = {"config": config, "history": {"loss": [], "seconds_per_epoch": []}}
    extra["shift_rng"] = torch.Generator().get_state()
    clf.save(out / "checkpoint.pt", extra=extra)
    flags = ["--data-dir", str(tmp_path), "--hidden", "16", "--resume", "--out", str(out)]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *flags, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "these differ" in result.stderr and "MNIST" not in result.stderr


@pytest.mark.mnist
def test_ctrl_c_ends_the_run_in_one_line_and_it_resumes(mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    flags = [
        *("--data-dir", str(mnist_dir), "--train-size", "20000", "--test-size", "200"),
        *("--hidden", "64", "--epochs", "20", "--num-samples", "2", "--shift-test-samples", "2"),
        *("--threads", "1", "--no-progress", "--eval-every", "0", "--out", str(out)),
    ]
    with interruptible([sys.executable, "-u", str(SCRIPT), *flags]) as run:
        assert run.stdout is not None
        line = run.stdout.readline()
        assert line.startswith("epoch   1/20"), line
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.strip().startswith("interrupted; the last finished epoch is in ")
    assert stderr.strip().endswith("continue with --resume")
    assert not (out / ".lock").exists() and not list(out.glob(".*.part"))
    clf = BNNClassifier(BayesianMLP(784, (64,), 10))
    assert clf.load(out / "checkpoint.pt")["history"]["loss"]  # a whole, checked checkpoint


@pytest.mark.mnist
def test_init_from_starts_the_bayesian_net_where_a_trained_plain_net_is(
    mnist_dir: Path, tmp_path: Path
) -> None:
    common = [
        *("--data-dir", mnist_dir, "--arch", "lenet", "--train-size", "512", "--test-size", "300"),
        *("--num-samples", "8", "--shift-test-samples", "2", "--threads", "2", "--no-progress"),
        *("--eval-every", "0"),
    ]
    _run(*common, "--epochs", "1", "--out", tmp_path / "plain")
    trained = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    plain_accuracy = trained["shift_test"]["clean"]["plain"]["accuracy"]
    # No training at all: the Bayesian net predicts with the trained plain LeNet's weights.
    _run(
        *common,
        *("--epochs", "0", "--init-from", tmp_path / "plain" / "checkpoint.pt"),
        *("--init-scale-fraction", "0.01", "--out", tmp_path / "started"),
    )
    started = json.loads((tmp_path / "started" / "metrics.json").read_text())
    assert started["config"]["init_from"] == str(tmp_path / "plain" / "checkpoint.pt")
    assert started["test_accuracy"] > plain_accuracy - 0.03 and plain_accuracy > 0.3  # chance: 0.1
    torch.save(lenet().state_dict(), tmp_path / "other.pt")  # a state_dict file works too
    _run(*common, "--epochs", "0", "--init-from", tmp_path / "other.pt", "--out", tmp_path / "o")
    not_a_network = tmp_path / "started" / "metrics.json"
    flags = [*map(str, common), "--epochs", "0", "--out", str(tmp_path / "x")]
    refused = subprocess.run(
        [sys.executable, str(SCRIPT), *flags, "--init-from", str(not_a_network)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and "--init-from" in refused.stderr
    assert "Traceback" not in refused.stderr
