"""A checkpoint with a valid digest is still checked entry by entry before anything is loaded."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyro
import pytest
import torch

from pyro_logits.bnn import BayesianMLP, BNNClassifier
from pyro_logits.bnn.baseline import PlainNetwork, plain_mlp
from pyro_logits.runs import read_checkpoint, write_checkpoint
from pyro_logits.runs.state import StateError

Edit = Callable[[dict[str, Any]], None]


def _trained(tmp_path: Path) -> tuple[BNNClassifier, Path]:
    pyro.clear_param_store()
    x = torch.rand(64, 6)
    y = (x[:, 0] * 3).long().clamp(max=2)
    clf = BNNClassifier(BayesianMLP(6, (8,), 3), average_from=1)
    clf.fit(x, y, epochs=2, batch_size=16)
    path = tmp_path / "checkpoint.pt"
    clf.save(path)
    return clf, path


def _set(*keys: object, value: object) -> Edit:
    def edit(state: dict[str, Any]) -> None:
        target = state
        for key in keys[:-1]:
            target = target[key]  # type: ignore[index]
        target[keys[-1]] = value  # type: ignore[index]

    return edit


def _delete(*keys: str) -> Edit:
    def edit(state: dict[str, Any]) -> None:
        target = state
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return edit


def _scale_step(state: dict[str, Any]) -> None:
    state["optimizer"]["adam"]["state"][1]["step"] = torch.tensor(3.0)


VARIANTS: list[tuple[str, Edit, str]] = [
    # torch's fused CPU Adam checks no shapes: this one crashed the process (SIGSEGV)
    (
        "exp_avg of another shape",
        _set("optimizer", "adam", "state", 0, "exp_avg", value=torch.zeros(5)),
        r"optimizer\.adam\.state\[0\]\.exp_avg .* to be a torch\.float32 tensor of shape \(83,\)",
    ),
    ("negative epoch", _set("epoch", value=-5), r"epoch .* an integer >= 0 but got -5"),
    ("epoch past the steps", _set("epoch", value=10**9), r"at most the 8 steps Adam took"),
    ("fractional epoch", _set("epoch", value=1.7), r"epoch .* an integer but got float 1\.7"),
    ("missing param", _delete("params", "guide.loc"), r"params .* no 'guide\.loc'"),
    (
        "extra param",
        _set("params", "other", value=torch.zeros(1)),
        r"the guide's params \['guide\.loc', 'guide\.log_scale'\]",
    ),
    (
        "param of another network",
        _set("params", "guide.loc", value=torch.zeros(99)),
        r"params\['guide\.loc'\] .* shape \(83,\) .* shape \(99,\)",
    ),
    (
        "param in float64",
        _set("params", "guide.loc", value=torch.zeros(83, dtype=torch.float64)),
        r"a torch\.float32 tensor of shape \(83,\) .* torch\.float64",
    ),
    (
        "NaN param",
        _set("params", "guide.log_scale", value=torch.full((83,), float("nan"))),
        r"params\['guide\.log_scale'\] .* finite values",
    ),
    ("negative lr", _set("optimizer", "lr", value=-0.1), r"optimizer\.lr .* > 0 but got -0\.1"),
    ("lr as text", _set("optimizer", "lr", value="0.1"), r"optimizer\.lr .* a number but got str"),
    ("steps that differ", _scale_step, r"one step count for every param but got \[3, 8\]"),
    (
        "negative second moment",
        _set("optimizer", "adam", "state", 1, "exp_avg_sq", value=-torch.ones(83)),
        r"exp_avg_sq .* non-negative values",
    ),
    ("torch random state cut", _set("rng", "torch", value=torch.zeros(7, dtype=torch.uint8)), r"rng\.torch"),
    ("shuffle state missing", _delete("rng", "shuffle"), r"rng .* no 'shuffle'"),
    ("negative average count", _set("average", "count", value=-1), r"average\.count"),
    (
        "average of one tensor",
        _set("average", "means", value=[torch.zeros(83)]),
        r"average\.means .* a list of 2 tensors but got 1 of them",
    ),
    ("estimator as a number", _set("estimator", value=3), r"estimator .* a name or None"),
    ("another format", _set("format", value=2), r"format .* written by another version"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "edit", "match"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_a_digest_valid_checkpoint_of_wrong_content_is_refused_naming_the_entry(
    tmp_path: Path, name: str, edit: Edit, match: str
) -> None:
    clf, path = _trained(tmp_path)
    state = read_checkpoint(path, ())
    edit(state)
    write_checkpoint(path, state)  # a valid digest over the edited content
    before = {n: pyro.param(n).detach().clone() for n in clf.guide.param_names}
    with pytest.raises(ValueError, match=match) as error:
        clf.load(path)
    assert str(path) in str(error.value) and "delete it to start afresh" in str(error.value)
    for n, value in before.items():  # a refused checkpoint changes nothing
        assert torch.equal(pyro.param(n), value), name
    assert clf.epoch == 2


def test_the_unedited_checkpoint_still_resumes(tmp_path: Path) -> None:
    clf, path = _trained(tmp_path)
    state = read_checkpoint(path, ())
    clf.load(path)
    assert clf.epoch == 2 and clf.average.count == 8
    assert read_checkpoint(path, ())["epoch"] == state["epoch"]


def test_a_plain_networks_state_is_checked_before_it_is_loaded() -> None:
    plain = PlainNetwork(plain_mlp((6, 8, 3)), average_from=1)
    plain.train_epoch(torch.rand(32, 6), torch.randint(3, (32,)), batch_size=8)
    good = plain.state_dict()
    plain.load_state_dict(copy.deepcopy(good))
    bad = copy.deepcopy(good)
    bad["optimizer"]["state"][0]["exp_avg"] = torch.zeros(3)
    with pytest.raises(StateError, match=r"plain\.optimizer\.state\[0\]\.exp_avg"):
        plain.load_state_dict(bad)
    bad = copy.deepcopy(good)
    del bad["net"]["2.bias"]
    with pytest.raises(StateError, match=r"plain\.net .* no '2\.bias'"):
        plain.load_state_dict(bad)
    bad = copy.deepcopy(good)
    bad["epoch"] = 99
    with pytest.raises(StateError, match=r"plain\.epoch .* at most the 4 steps"):
        plain.load_state_dict(bad)


def test_a_plain_networks_average_is_the_mean_of_its_params_after_each_averaged_step() -> None:
    # Reference: the parameters recorded after every step of epochs 2 and 3, averaged in
    # float64 by hand; the running mean agrees to float32 rounding.
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(64, 6, generator=g), torch.randint(3, (64,), generator=g)
    plain = PlainNetwork(plain_mlp((6, 8, 3)), lr=0.05, average_from=2)
    seen: list[list[torch.Tensor]] = []
    step = plain.step

    def recorded(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = step(xb, yb)
        if plain.epoch >= 1:
            seen.append([p.detach().double().clone() for p in plain.net.parameters()])
        return loss

    plain.step = recorded  # type: ignore[method-assign]
    for _ in range(3):
        plain.train_epoch(x, y, batch_size=16)
    assert plain.average.count == len(seen) == 2 * 4
    plain.use_average()
    for index, param in enumerate(plain.net.parameters()):
        expected = torch.stack([params[index] for params in seen]).mean(0)
        torch.testing.assert_close(param.detach().double(), expected, rtol=0, atol=1e-6)
