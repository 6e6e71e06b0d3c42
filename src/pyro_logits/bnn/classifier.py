"""Training by SVI on minibatches, the posterior predictive, and checkpoints."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

import pyro
import torch
from pyro.infer import ELBO, SVI

from pyro_logits._checkpoint import read_checkpoint, write_checkpoint
from pyro_logits.bnn.averaging import IterateAverage
from pyro_logits.bnn.distributed import DataParallel
from pyro_logits.bnn.guide import MeanFieldGuide
from pyro_logits.bnn.loss import MeanFieldELBO
from pyro_logits.bnn.model import BayesianNetwork, Estimator
from pyro_logits.bnn.optim import JointAdam, fused_adam_supported
from pyro_logits.convert import predictive_log_probs
from pyro_logits.labels import check_class_labels
from pyro_logits.runs.state import (
    StateError,
    expect_adam_state,
    expect_epoch,
    expect_keys,
    expect_number,
    expect_tensor,
)

CHECKPOINT_FORMAT = 4
REQUIRED_KEYS = ("format", "epoch", "estimator", "params", "optimizer", "rng", "average")


class _KLWeighted(Protocol):
    kl_weight: float


class BNNClassifier:
    """Train a :class:`BayesianNetwork` with SVI on minibatches and predict by Bayesian averaging.

    Parameters
    ----------
    model : BayesianNetwork
        The model (architecture and priors), e.g. a :class:`BayesianMLP`.
    guide : MeanFieldGuide, optional
        The posterior; by default ``MeanFieldGuide(model, init_scale=init_scale)``. Training
        reads its ``param_names`` (for averaging and checkpoints) and prediction its
        ``sample_weights``.
    loss : pyro.infer.ELBO, optional
        The loss SVI minimises; by default ``MeanFieldELBO(estimator=estimator,
        kl_weight=kl_weight)``. Any Pyro ELBO that runs the model and guide will do, e.g.
        ``pyro.infer.TraceMeanField_ELBO()``; ``estimator`` and ``kl_weight`` then stay unset,
        and ``kl_warmup`` needs a loss with a ``kl_weight`` attribute.
    estimator : {"local-reparam", "flipout", "sample-weights"}
        How the default loss samples the expected log-likelihood (see :class:`MeanFieldELBO`);
        ``"local-reparam"`` if not given.
    lr : float
        Adam's learning rate.
    lr_decay : float
        Factor applied to the learning rate after each epoch (1.0 keeps it constant; see
        :class:`~pyro_logits.bnn.optim.JointAdam`).
    init_scale : float
        Initial posterior standard deviation of every weight of the default guide (see
        :class:`MeanFieldGuide`).
    kl_weight : float
        Weight of the KL term in the default loss (see :class:`MeanFieldELBO`); 1.0, the ELBO,
        if not given.
    kl_warmup : int
        Epochs over which the KL weight rises linearly to ``kl_weight``: epoch ``e`` (from 1)
        uses ``kl_weight * min(1, e / kl_warmup)`` (KL annealing); 0 uses ``kl_weight`` from
        the start. See :meth:`kl_weight_at`.
    average_from : int
        From this training epoch (counted from 1) on, every step's posterior parameters (the
        means and log standard deviations) are folded into a running mean, the iterate average
        of Polyak and Ruppert, which :meth:`use_average` puts in place for prediction; 0 keeps
        no average (:class:`~pyro_logits.bnn.averaging.IterateAverage`).
    seed : int
        Seed of the generator that shuffles the training data; seed the sampling noise with
        ``pyro.set_rng_seed``.
    device : torch.device or str
        Where the params live; pass the data on the same device.
    data_parallel : DataParallel, optional
        Train one model over the processes of a ``torchrun`` run (see
        :mod:`pyro_logits.bnn.distributed`); its device overrides ``device``.

    Examples
    --------
    >>> import pyro, torch
    >>> from pyro_logits.bnn import BayesianMLP
    >>> pyro.clear_param_store()
    >>> x, y = torch.rand(100, 6), torch.randint(2, (100,))
    >>> clf = BNNClassifier(BayesianMLP(6, (12,), 2), lr=0.01)
    >>> history = clf.fit(x, y, epochs=3, batch_size=25)
    >>> clf.epoch, len(history)
    (3, 3)
    """

    def __init__(
        self,
        model: BayesianNetwork,
        *,
        guide: MeanFieldGuide | None = None,
        loss: ELBO | None = None,
        estimator: Estimator | None = None,
        lr: float = 1e-3,
        lr_decay: float = 1.0,
        init_scale: float = 0.005,
        kl_weight: float | None = None,
        kl_warmup: int = 0,
        average_from: int = 0,
        seed: int = 0,
        device: torch.device | str = "cpu",
        data_parallel: DataParallel | None = None,
    ) -> None:
        if not lr > 0 or not 0 < lr_decay <= 1:
            raise ValueError(f"Expected lr > 0 and 0 < lr_decay <= 1 but got {lr} and {lr_decay}.")
        if isinstance(kl_warmup, bool) or not isinstance(kl_warmup, int) or kl_warmup < 0:
            raise ValueError(f"Expected kl_warmup to be an int >= 0 but got {kl_warmup!r}.")
        if isinstance(average_from, bool) or not isinstance(average_from, int) or average_from < 0:
            raise ValueError(f"Expected average_from to be an int >= 0 but got {average_from!r}.")
        self.data_parallel = data_parallel
        self.device = data_parallel.device if data_parallel is not None else torch.device(device)
        self.model = model.to(self.device)
        if guide is None:
            guide = MeanFieldGuide(model, init_scale=init_scale, device=self.device)
        self.guide = guide
        self.loss = self._loss(loss, estimator, kl_weight, kl_warmup)
        self.kl_weight: float = getattr(self.loss, "kl_weight", 1.0)
        self.kl_warmup = kl_warmup
        self.lr, self.lr_decay = lr, lr_decay
        self.epoch = 0
        self.average_from = average_from
        self.average = IterateAverage()
        self.generator = torch.Generator().manual_seed(seed)
        if data_parallel is not None:  # every process starts from process 0's parameters
            data_parallel.broadcast(self._params())
        self._new_optimizer()

    def _loss(
        self, loss: ELBO | None, estimator: Estimator | None, kl_weight: float | None, warmup: int
    ) -> ELBO:
        """The loss given, checked, or the default one."""
        if loss is None:
            return MeanFieldELBO(
                estimator=estimator or "local-reparam",
                kl_weight=1.0 if kl_weight is None else kl_weight,
                data_parallel=self.data_parallel,
            )
        if estimator is not None or kl_weight is not None:
            raise ValueError(
                "Expected either loss= or the default loss's estimator= and kl_weight=, but got "
                "both; set them on the loss you pass."
            )
        if warmup and not hasattr(loss, "kl_weight"):
            raise ValueError(
                f"Expected a loss with a kl_weight attribute for kl_warmup={warmup} but "
                f"{type(loss).__name__} has none; pass kl_warmup=0."
            )
        if self.data_parallel is not None and getattr(loss, "data_parallel", None) is not (
            self.data_parallel
        ):
            raise ValueError(
                "Expected a loss that sums the gradients over the processes but got one without "
                "this data_parallel; pass MeanFieldELBO(data_parallel=...) with the same object."
            )
        return loss

    def _params(self) -> list[torch.Tensor]:
        """The guide's params, unconstrained, in the guide's order."""
        params = dict(pyro.get_param_store().named_parameters())
        if not all(name in params for name in self.guide.param_names):
            self.guide.posterior()  # created on first use
            params = dict(pyro.get_param_store().named_parameters())
        return [params[name] for name in self.guide.param_names]

    def _new_optimizer(self) -> None:
        # Fused Adam updates both params in one kernel: over the 2 x 478k params of the
        # default network it takes a tenth of the time of the default implementation.
        self.optim = JointAdam(
            lr=self.lr, gamma=self.lr_decay, fused=fused_adam_supported(self.device)
        )
        self.svi = SVI(self.model, self.guide, self.optim, loss=self.loss)

    @property
    def estimator(self) -> str | None:
        """How the loss samples the likelihood, if it says (:class:`MeanFieldELBO` does)."""
        return getattr(self.loss, "estimator", None)

    @property
    def current_lr(self) -> float:
        """The learning rate of the next step."""
        return self.optim.lr

    def train_epoch(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int = 128,
        callback: Callable[[int, int, float], None] | None = None,
    ) -> float:
        """One pass over the shuffled data in minibatches, one SVI step each.

        Parameters
        ----------
        x : torch.Tensor
            Training inputs ``(N, *model.input_shape)`` on the classifier's device.
        y : torch.Tensor
            Integer labels ``(N,)``.
        batch_size : int
            Minibatch size; the last batch may be smaller.
        callback : callable, optional
            Called as ``callback(step, num_steps, loss)`` after each step.

        Returns
        -------
        float
            The mean over the epoch's steps of the loss (the negative ELBO of the full data set).
        """
        n = x.shape[0]
        self._check_data(x, y)
        if self.kl_warmup:  # else the loss keeps its weight, which a caller may have set
            cast(_KLWeighted, self.loss).kl_weight = self.kl_weight_at(self.epoch + 1)
        order = torch.randperm(n, generator=self.generator).to(x.device)
        batches = order.split(batch_size)
        averaging = 0 < self.average_from <= self.epoch + 1
        total = 0.0
        for step, idx in enumerate(batches):
            # The likelihood's checks run on each epoch's first step (the data were checked
            # above); a non-finite loss is caught on every step.
            kwargs: dict[str, Any] = {"dataset_size": n, "validate": step == 0}
            if self.data_parallel is not None:
                shard = self.data_parallel.shard(len(idx))
                kwargs["shard"] = shard
                idx = idx[shard.start : shard.stop]
            loss = self.svi.step(x[idx], y[idx], **kwargs)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"Expected a finite loss but got {loss} at epoch {self.epoch + 1}, step "
                    f"{step + 1}; lower the learning rate (now {self.current_lr:g})."
                )
            total += loss
            if averaging:
                self.average.update(self._params())
            if callback is not None:
                callback(step, len(batches), loss)
        self.epoch += 1
        self.optim.step()
        return total / len(batches)

    def use_average(self) -> None:
        """Replace the posterior parameters by their average over the steps since ``average_from``.

        Call it after training, before predicting; further training would start from the average.

        Raises
        ------
        RuntimeError
            If no step has been averaged yet (``average_from`` is 0 or after the last epoch).
        """
        if not self.average.count:
            raise RuntimeError(
                f"Expected an average of the posterior parameters but none was kept: "
                f"average_from is {self.average_from} and {self.epoch} epoch(s) were trained; "
                f"pass average_from between 1 and the number of epochs."
            )
        self.average.copy_to(self._params())

    def kl_weight_at(self, epoch: int) -> float:
        """The KL weight of training epoch ``epoch`` (counted from 1) under ``kl_warmup``."""
        if self.kl_warmup == 0:
            return self.kl_weight
        return self.kl_weight * min(1.0, epoch / self.kl_warmup)

    def _check_data(self, x: torch.Tensor, y: torch.Tensor) -> None:
        n, num_classes, shape = x.shape[0], self.model.num_classes, self.model.input_shape
        if x.shape[1:] != shape or not x.is_floating_point():
            raise ValueError(
                f"Expected float inputs of shape (N, {', '.join(map(str, shape))}) but got "
                f"{x.dtype} of shape {tuple(x.shape)}."
            )
        if y.shape != (n,):
            raise ValueError(f"Expected labels of shape ({n},) but got {tuple(y.shape)}.")
        check_class_labels(y, num_classes, where="the labels y")

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        epochs: int,
        batch_size: int = 128,
        callback: Callable[[int, int, float], None] | None = None,
    ) -> list[float]:
        """Train until :attr:`epoch` reaches ``epochs``; return each new epoch's mean loss."""
        return [
            self.train_epoch(x, y, batch_size=batch_size, callback=callback)
            for _ in range(self.epoch, epochs)
        ]

    @torch.no_grad()
    def predict_log_probs(
        self,
        x: torch.Tensor,
        *,
        num_samples: int = 32,
        batch_size: int = 1000,
        sample_chunk: int = 8,
    ) -> torch.Tensor:
        """Log posterior-predictive probabilities: weight samples averaged in probability space.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``(N, *model.input_shape)``.
        num_samples : int
            Number of posterior weight samples ``S``.
        batch_size, sample_chunk : int
            Inputs and weight samples per forward pass (memory only; the result is the same).

        Returns
        -------
        torch.Tensor
            ``log(mean_s softmax(logits_s))`` of shape ``(N, num_classes)``
            (:func:`~pyro_logits.predictive_log_probs`); not the softmax of averaged logits.
        """
        if num_samples < 1:
            raise ValueError(f"Expected num_samples >= 1 but got {num_samples}.")
        chunks = []
        for start in range(0, num_samples, sample_chunk):
            weights = self.guide.sample_weights(min(sample_chunk, num_samples - start))
            chunks.append(
                torch.cat([self.model.network(xb, weights) for xb in x.split(batch_size)], dim=1)
            )
        return predictive_log_probs(torch.cat(chunks, dim=0), dim=0)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: params, Adam's state, epoch and random states."""
        params = self._params()  # created first if need be, so the random states come after
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "shuffle": self.generator.get_state(),
        }
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "estimator": self.estimator,
            "params": {
                name: param.detach().clone()
                for name, param in zip(self.guide.param_names, params, strict=True)
            },
            "optimizer": self.optim.get_state(),
            "rng": rng,
            "average": self.average.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output: training then continues exactly where it stopped.

        Every entry is checked first (:meth:`check_state_dict`); a refused state changes
        nothing.
        """
        self.check_state_dict(state)
        store = pyro.get_param_store()
        for name, value in state["params"].items():
            if name in store:
                del store[name]
            pyro.param(name, value.to(self.device))
        self.epoch = int(state["epoch"])
        self.average.load_state_dict(state["average"], like=self._params())
        self._new_optimizer()
        self.optim.set_state(state["optimizer"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        self.generator.set_state(rng["shuffle"].cpu())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)

    def check_state_dict(self, state: object) -> None:
        """Check that ``state`` is a :meth:`state_dict` of this classifier's model and guide.

        The keys, the type, shape and dtype of every tensor (params, Adam's moments, the random
        states, the average) and the counters: an epoch no larger than Adam's step count.

        Raises
        ------
        StateError
            A ``ValueError`` naming the first entry that does not fit.
        """
        state = expect_keys("the checkpoint", state, REQUIRED_KEYS)
        if state["format"] != CHECKPOINT_FORMAT:
            raise StateError(
                "the checkpoint's format",
                f"{CHECKPOINT_FORMAT}",
                f"{state['format']!r}, written by another version of pyro-logits",
            )
        if not (state["estimator"] is None or isinstance(state["estimator"], str)):
            raise StateError("estimator", "a name or None", repr(state["estimator"]))
        names, current = self.guide.param_names, self._params()
        params = expect_keys("params", state["params"], names)
        if set(params) != set(names):
            raise StateError("params", f"the guide's params {names}", f"{sorted(params)}")
        for name, like in zip(names, current, strict=True):
            expect_tensor(f"params[{name!r}]", params[name], like, finite=True)
        optimizer = expect_keys("optimizer", state["optimizer"], ("lr", "adam"))
        expect_number("optimizer.lr", optimizer["lr"])
        steps = 0
        if optimizer["adam"] is not None:  # JointAdam's order: by name
            by_name = [like for _, like in sorted(zip(names, current, strict=True))]
            steps = expect_adam_state("optimizer.adam", optimizer["adam"], by_name)
        expect_epoch("epoch", state["epoch"], steps)
        rng = expect_keys("rng", state["rng"], ("torch", "shuffle"))
        expect_tensor("rng.torch", rng["torch"], torch.get_rng_state())
        expect_tensor("rng.shuffle", rng["shuffle"], self.generator.get_state())
        if "cuda" in rng and self.device.type == "cuda":
            expect_tensor("rng.cuda", rng["cuda"], torch.cuda.get_rng_state(self.device))
        IterateAverage.check_state_dict(state["average"], current, entry="average")

    def save(self, path: str | os.PathLike[str], *, extra: dict[str, Any] | None = None) -> None:
        """Write :meth:`state_dict` (plus ``extra``) atomically: no half-written file on a crash."""
        state = self.state_dict()
        if extra:
            state["extra"] = extra
        write_checkpoint(Path(path), state)

    def load(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Restore a checkpoint written by :meth:`save`; return its ``extra`` dict.

        The file's SHA-256 digest is checked first; it is loaded with ``weights_only=True``:
        tensors and plain containers only, no code.

        Raises
        ------
        ValueError
            If the file is missing, empty, truncated, altered, not a checkpoint, or lacks keys.
        """
        state = read_checkpoint(Path(path), REQUIRED_KEYS)
        try:
            self.load_state_dict(state)
        except StateError as error:
            raise StateError(
                f"{error.entry} in {path}",
                error.expected,
                f"{error.got}; the file is whole but does not fit this classifier: resume with "
                f"the settings that wrote it, or delete it to start afresh",
            ) from None
        return state.get("extra", {})
