"""The static linter: every rule on positive and negative snippets, tracking, noqa, files, CLI."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pyro_logits_lint as lint
import pytest
from helpers import REPO_ROOT

HEADER = """\
import math
import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn
"""


def findings(source: str) -> list:
    return lint.lint_source(HEADER + dedent(source), path="snippet.py")


def codes(source: str) -> list[str]:
    return [f.code for f in findings(source)]


def parametrize_snippets(cases: dict[str, str]):
    return pytest.mark.parametrize("source", list(cases.values()), ids=list(cases))


# --------------------------------------------------------------------------------------------
# PL001: log_softmax where the consumer normalises itself (redundant).

PL001_POSITIVE = {
    "F-dim-kw": "d = dist.Categorical(logits=F.log_softmax(z, dim=-1))",
    "F-dim-positional": "d = dist.Categorical(logits=F.log_softmax(z, -1))",
    "torch-function": "d = dist.OneHotCategorical(logits=torch.log_softmax(z, -1))",
    "full-path": "d = dist.Categorical(logits=torch.nn.functional.log_softmax(z, dim=1))",
    "method": "d = dist.Categorical(logits=z.log_softmax(-1))",
    "imported-alias": """
        from torch.nn.functional import log_softmax as lsm
        d = dist.Categorical(logits=lsm(z, -1))
    """,
    "variable": """
        lhat = F.log_softmax(net(x), dim=-1)
        d = dist.Categorical(logits=lhat)
    """,
    "value-preserving-methods": """
        lhat = F.log_softmax(z, dim=-1).detach().float()
        d = dist.Categorical(logits=lhat.to("cpu"))
    """,
    "log-of-softmax": "d = dist.Categorical(logits=torch.log(F.softmax(z, -1) + 1e-8))",
    "handwritten": "d = dist.Categorical(logits=z - z.logsumexp(-1, keepdim=True))",
    "multinomial": "d = dist.Multinomial(10, logits=F.log_softmax(z, -1))",
    "relaxed": "d = dist.RelaxedOneHotCategorical(t, logits=F.log_softmax(z, -1))",
    "cross-entropy": "loss = F.cross_entropy(F.log_softmax(z, -1), y)",
    "cross-entropy-module": "loss = nn.CrossEntropyLoss()(z.log_softmax(-1), y)",
    "cross-entropy-variable": """
        criterion = nn.CrossEntropyLoss(reduction="sum")
        out = F.log_softmax(z, dim=1)
        loss = criterion(out, y)
    """,
    "module-attribute": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)
                self.out = nn.LogSoftmax(dim=1)

            def model(self, x, y):
                lhat = self.out(self.fc(x))
                pyro.sample("y", dist.Categorical(logits=lhat), obs=y)
    """,
    "sequential-attribute": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(784, 10), nn.LogSoftmax(dim=-1))

            def model(self, x, y):
                pyro.sample("y", dist.Categorical(logits=self.net(x)), obs=y)
    """,
    "local-module": """
        to_log_probs = nn.LogSoftmax(dim=-1)
        d = dist.Categorical(logits=to_log_probs(z))
    """,
    "forward-returns-log-softmax": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)

            def forward(self, x):
                return F.log_softmax(self.fc(x), dim=1)

        net = Net()

        def model(x, y):
            pyro.module("net", net)
            pyro.sample("y", dist.Categorical(logits=net(x)), obs=y)
    """,
    "helper-function": """
        def normalise(z):
            return F.log_softmax(z, dim=-1)

        d = dist.Categorical(logits=normalise(z))
    """,
}

PL001_NEGATIVE = {
    "raw-scores": "d = dist.Categorical(logits=net(x))",
    "temperature": "d = dist.Categorical(logits=F.log_softmax(z, -1) / t)",
    "reassigned": """
        lhat = F.log_softmax(z, dim=-1)
        lhat = lhat * 2
        d = dist.Categorical(logits=lhat)
    """,
    "reassigned-other": """
        lhat = F.log_softmax(z, dim=-1)
        lhat = net(x)
        d = dist.Categorical(logits=lhat)
    """,
    "in-place": """
        lhat = F.log_softmax(z, dim=-1)
        lhat.mul_(2)
        d = dist.Categorical(logits=lhat)
    """,
    "item-assignment": """
        lhat = F.log_softmax(z, dim=-1)
        lhat[..., 0] = 0.0
        d = dist.Categorical(logits=lhat)
    """,
    "one-branch-only": """
        if calibrated:
            lhat = F.log_softmax(z, dim=-1)
        else:
            lhat = z
        d = dist.Categorical(logits=lhat)
    """,
    "other-function": """
        def f(z):
            lhat = F.log_softmax(z, dim=-1)
            return lhat.exp()

        def g(lhat):
            return dist.Categorical(logits=lhat)
    """,
    "nll-loss-expects-log-probs": "loss = F.nll_loss(F.log_softmax(z, dim=-1), y)",
    "nll-loss-module": "loss = nn.NLLLoss()(F.log_softmax(z, dim=-1), y)",
    "user-function-named-log-softmax": """
        def log_softmax(z):
            return z

        d = dist.Categorical(logits=log_softmax(z))
    """,
    "shape-change": "d = dist.Categorical(logits=F.log_softmax(z, -1)[..., :5])",
    "log-probs-as-value": "lp = dist.Categorical(logits=z).log_prob(y) + F.log_softmax(z, -1)",
    "module-reassigned-elsewhere": """
        class Net(nn.Module):
            def __init__(self, calibrated):
                super().__init__()
                self.out = nn.LogSoftmax(dim=1)
                if not calibrated:
                    self.out = nn.Identity()

            def model(self, h):
                return dist.Categorical(logits=self.out(h))
    """,
    "sequential-extended": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=-1))
                self.net.append(nn.Linear(3, 3))

            def model(self, x):
                return dist.Categorical(logits=self.net(x))
    """,
    "forward-returns-raw": """
        class Net(nn.Module):
            def forward(self, x):
                if self.training:
                    return self.fc(x)
                return F.log_softmax(self.fc(x), dim=1)

        d = dist.Categorical(logits=Net()(x))
    """,
}


@parametrize_snippets(PL001_POSITIVE)
def test_pl001_positive(source: str) -> None:
    assert codes(source) == ["PL001"]


@parametrize_snippets(PL001_NEGATIVE)
def test_pl001_negative(source: str) -> None:
    assert codes(source) == []


def test_pl001_message_names_origin_and_fix() -> None:
    (finding,) = findings(
        """
        lhat = F.log_softmax(z, dim=-1)
        d = dist.Categorical(logits=lhat)
        """
    )
    offset = HEADER.count("\n")
    assert (finding.line, finding.col) == (offset + 3, 29)
    assert finding.message == (
        f"`F.log_softmax` output (line {offset + 2}) used as `Categorical` logits: redundant, "
        "`Categorical` applies log_softmax itself; pass the raw scores"
    )


# --------------------------------------------------------------------------------------------
# PL002: normalised over dim 0 of a network output.

PL002_POSITIVE = {
    "plate-sized-input": """
        class Net(nn.Module):
            def model(self, x, y):
                with pyro.plate("data", x.shape[0]):
                    lhat = F.log_softmax(self.fc(x), dim=0)
                    pyro.sample("y", dist.Categorical(logits=lhat), obs=y)
    """,
    "through-names-and-arithmetic": """
        def model(x, y):
            with pyro.plate("data", len(x)):
                h = F.relu(net(x))
                scores = h / 2.0
                pyro.sample("y", dist.Categorical(logits=scores.log_softmax(0)), obs=y)
    """,
    "loader-loop-nll-loss": """
        for data, target in train_loader:
            out = model(data)
            loss = F.nll_loss(F.log_softmax(out, 0), target)
    """,
    "forward-over-dim0": """
        class Net(nn.Module):
            def forward(self, x):
                return F.log_softmax(self.fc(x), dim=0)

        model = Net()
        criterion = nn.NLLLoss()
        for i, (x, y) in enumerate(train_loader):
            loss = criterion(model(x), y)
    """,
    "probs-positional": """
        class Net(nn.Module):
            def model(self, h):
                h = h.view(h.size(0), -1)
                return dist.Categorical(F.softmax(self.fc(h), dim=0))
    """,
    "module-dim0": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(784, 10)
                self.out = nn.LogSoftmax(dim=0)

            def model(self, h):
                h = h.view(-1, 784)
                return dist.Categorical(logits=self.out(self.fc(h)))
    """,
    "sequential-dim0": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(784, 10), nn.LogSoftmax(dim=0))

            def model(self, x):
                return dist.Categorical(logits=self.net(x.flatten(1)))
    """,
    "cross-entropy": """
        for x, y in tqdm(loader):
            loss = F.cross_entropy(F.log_softmax(classifier(x), dim=0), y)
    """,
}

PL002_NEGATIVE = {
    "weights-vector-probs": "d = dist.Categorical(F.softmax(self.weights, dim=0))",
    "parameter-vector-probs": "d = dist.Categorical(torch.softmax(alpha, 0))",
    "class-dim": """
        class Net(nn.Module):
            def model(self, h):
                return dist.Categorical(F.softmax(self.fc(h), dim=-1))
    """,
    "reduced-first": "d = dist.Categorical(F.softmax(net(x).sum(-1), dim=0))",
    "not-used": """
        for x, y in loader:
            p = F.softmax(net(x), dim=0)
    """,
    "single-example-policy": """
        class Policy(nn.Module):
            def forward(self, state):
                x = F.relu(self.fc1(state.view(-1)))
                return F.softmax(self.fc2(x), dim=0)

        policy = Policy()
        for state in states:
            action = dist.Categorical(policy(state)).sample()
    """,
    "flattened-batch": """
        for x, y in loader:
            x = x.view(-1)
            p = dist.Categorical(F.softmax(net(x), dim=0))
    """,
}


@parametrize_snippets(PL002_POSITIVE)
def test_pl002_positive(source: str) -> None:
    assert codes(source) == ["PL002"]


@parametrize_snippets(PL002_NEGATIVE)
def test_pl002_negative(source: str) -> None:
    assert codes(source) == []


def test_pl002_without_batch_evidence_is_only_redundant() -> None:
    # A 1-D tensor normalised over dim 0 is right; only the redundancy is reported, with a note.
    (finding,) = findings("d = dist.Categorical(logits=F.log_softmax(self.fc(h), dim=0))")
    assert finding.code == "PL001"
    assert finding.message.endswith(
        "(it also normalises over dim 0: wrong if dim 0 is a batch dim)"
    )
    assert codes("d = dist.Categorical(logits=F.log_softmax(alpha, dim=-1))") == ["PL001"]


# --------------------------------------------------------------------------------------------
# PL003: probabilities where raw scores (or log-probabilities) belong.

PL003_POSITIVE = {
    "bernoulli-torch-sigmoid": "d = dist.Bernoulli(logits=torch.sigmoid(z))",
    "bernoulli-method": "d = dist.Bernoulli(logits=z.sigmoid())",
    "categorical-softmax": "d = dist.Categorical(logits=F.softmax(z, dim=-1))",
    "one-hot": "d = dist.OneHotCategorical(logits=z.softmax(-1))",
    "relaxed-bernoulli": "d = dist.RelaxedBernoulli(t, logits=F.sigmoid(z))",
    "continuous-bernoulli": "d = dist.ContinuousBernoulli(logits=torch.sigmoid(z))",
    "binomial": "d = dist.Binomial(10, logits=torch.sigmoid(z))",
    "geometric": "d = dist.Geometric(logits=torch.sigmoid(z))",
    "negative-binomial": "d = dist.NegativeBinomial(5, logits=torch.sigmoid(z))",
    "zero-inflated-gate": "d = dist.ZeroInflatedPoisson(rate, gate_logits=torch.sigmoid(g))",
    "expit": """
        from scipy.special import expit
        d = dist.Bernoulli(logits=expit(z))
    """,
    "bce-with-logits": "loss = F.binary_cross_entropy_with_logits(torch.sigmoid(z), y)",
    "bce-with-logits-module": """
        p = torch.sigmoid(z)
        loss = nn.BCEWithLogitsLoss()(p, y)
    """,
    "cross-entropy": "loss = F.cross_entropy(F.softmax(z, dim=1), y)",
    "cross-entropy-keyword": "loss = F.cross_entropy(input=F.softmax(z, dim=1), target=y)",
    "cross-entropy-attribute-loss": """
        class Trainer:
            def __init__(self):
                self.criterion = nn.CrossEntropyLoss()

            def step(self, out, y):
                return self.criterion(F.softmax(out, 1), y)
    """,
    "nll-loss-probs": "loss = F.nll_loss(F.softmax(z, dim=-1), y)",
    "sigmoid-module": """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 1)
                self.act = nn.Sigmoid()

            def model(self, x):
                return dist.Bernoulli(logits=self.act(self.fc(x)))
    """,
    "softmax-sequential": """
        net = nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=-1))
        d = dist.Categorical(logits=net(x))
    """,
    "variable": """
        p = torch.sigmoid(net(x))
        with pyro.plate("data", len(x)):
            pyro.sample("y", dist.Bernoulli(logits=p), obs=y)
    """,
    "any-logits-keyword": "d = pyro_logits.bernoulli(logits=torch.sigmoid(z))",
    "tensorflow-probability-keyword": """
        import tensorflow_probability as tfp
        tfd = tfp.distributions
        d = tfd.Bernoulli(logits=tf.sigmoid(z))
    """,
    "property": """
        class Head(nn.Module):
            @property
            def p(self):
                return torch.sigmoid(self.fc(self.h))

            def model(self, y):
                pyro.sample("y", dist.Bernoulli(logits=self.p), obs=y)
    """,
}

PL003_NEGATIVE = {
    "bernoulli-probs-positional": "d = dist.Bernoulli(torch.sigmoid(z))",
    "bernoulli-probs-keyword": "d = dist.Bernoulli(probs=torch.sigmoid(z))",
    "categorical-probs-positional": "d = dist.Categorical(F.softmax(z, dim=-1))",
    "bce-on-probs": "loss = F.binary_cross_entropy(torch.sigmoid(z), y)",
    "soft-targets": "loss = F.cross_entropy(z, F.softmax(t, dim=-1))",
    "reassigned": """
        p = torch.sigmoid(z)
        p = z
        d = dist.Bernoulli(logits=p)
    """,
    "sigmoid-then-logit": "d = dist.Bernoulli(logits=torch.logit(torch.sigmoid(z)))",
    "loop-reassigns": """
        p = torch.sigmoid(z)
        for step in range(3):
            d = dist.Bernoulli(logits=p)
            p = net(p)
    """,
}


@parametrize_snippets(PL003_POSITIVE)
def test_pl003_positive(source: str) -> None:
    assert codes(source) == ["PL003"]


@parametrize_snippets(PL003_NEGATIVE)
def test_pl003_negative(source: str) -> None:
    assert codes(source) == []


# --------------------------------------------------------------------------------------------
# PL004: log-probabilities as Bernoulli-type logits.

PL004_POSITIVE = {
    "logsigmoid": "d = dist.Bernoulli(logits=F.logsigmoid(z))",
    "module": """
        log_p = nn.LogSigmoid()
        d = dist.Bernoulli(logits=log_p(z))
    """,
    "log-of-sigmoid": "d = dist.Bernoulli(logits=torch.log(torch.sigmoid(z)))",
    "log-softmax-binary": "d = dist.Bernoulli(logits=F.log_softmax(z, -1))",
    "bce-with-logits": "loss = F.binary_cross_entropy_with_logits(F.logsigmoid(z), y)",
    "categorical": "d = dist.Categorical(logits=F.logsigmoid(z))",
}

PL004_NEGATIVE = {
    "raw": "d = dist.Bernoulli(logits=z)",
    "log-odds-from-logsigmoids": "d = dist.Bernoulli(logits=F.logsigmoid(z) - F.logsigmoid(-z))",
    "logit": "d = dist.Bernoulli(logits=torch.logit(p))",
    "other-keyword": "loss = F.binary_cross_entropy_with_logits(z, y, weight=F.logsigmoid(w))",
}


@parametrize_snippets(PL004_POSITIVE)
def test_pl004_positive(source: str) -> None:
    assert codes(source) == ["PL004"]


@parametrize_snippets(PL004_NEGATIVE)
def test_pl004_negative(source: str) -> None:
    assert codes(source) == []


# --------------------------------------------------------------------------------------------
# PL005: base-10 logs where logits are meant.

PL005_POSITIVE = {
    "log10-assigned": "logit_p = torch.log10(p / (1 - p))",
    "divide-by-log-10": "logits = torch.log(p) / math.log(10)",
    "divide-by-np-log-10": "logits = np.log(p) / np.log(10.0)",
    "divide-by-constant": "logits = torch.log(p) / 2.302585",
    "multiply-by-log10-e": "logits = torch.log(p) * 0.4342944819",
    "numpy-log10": "y_logits = np.log10(odds)",
    "method": "logits = odds.log10()",
    "math-log-base": "logit = math.log(odds, 10)",
    "difference-of-log10": "logits = torch.log10(p) - torch.log10(1 - p)",
    "module-constant": """
        LN10 = math.log(10)

        def f(p):
            logits = torch.log(p) / LN10
            return logits
    """,
    "keyword": "d = dist.Bernoulli(logits=torch.log10(odds))",
    "attribute": "self.logits = torch.log10(odds)",
    "returned-by-logit-function": """
        def logit(p):
            return torch.log10(p / (1 - p))
    """,
}

PL005_NEGATIVE = {
    "natural-log": "logits = torch.log(p / (1 - p))",
    "other-name": "magnitude = torch.log10(x)",
    "plot-axis": "ticks = np.log10(values) / math.log(10)",
    "other-base": "logits = torch.log(p) / math.log(2)",
    "other-function": """
        def decibels(p):
            return torch.log10(p)
    """,
}


@parametrize_snippets(PL005_POSITIVE)
def test_pl005_positive(source: str) -> None:
    assert codes(source) == ["PL005"]


@parametrize_snippets(PL005_NEGATIVE)
def test_pl005_negative(source: str) -> None:
    assert codes(source) == []


# --------------------------------------------------------------------------------------------
# PL006: BCELoss fed logits.

PL006_POSITIVE = {
    "name": "loss = F.binary_cross_entropy(logits, y)",
    "suffix": "loss = F.binary_cross_entropy(y_logits.squeeze(-1), y)",
    "camel-case": "loss = F.binary_cross_entropy(yLogits, y)",
    "scores": "loss = F.binary_cross_entropy(scores, y)",
    "attribute": "loss = F.binary_cross_entropy(outputs.logits, labels)",
    "mapping-key": "loss = F.binary_cross_entropy(out['logits'], labels)",
    "module-named-like-logits": "loss = F.binary_cross_entropy(self.logits(h), y)",
    "loss-module": "loss = nn.BCELoss()(logits, y)",
    "loss-variable": """
        criterion = nn.BCELoss()
        loss = criterion(logits[:, 0], y)
    """,
}

PL006_NEGATIVE = {
    "sigmoid-first": "loss = F.binary_cross_entropy(torch.sigmoid(logits), y)",
    "probs": "loss = F.binary_cross_entropy(probs, y)",
    "misnamed-but-sigmoid": """
        logits = torch.sigmoid(z)
        loss = F.binary_cross_entropy(logits, y)
    """,
    "with-logits": "loss = F.binary_cross_entropy_with_logits(logits, y)",
    "converted": "loss = F.binary_cross_entropy(logits_to_probs(logits), y)",
    "other-scores": "loss = F.binary_cross_entropy(pred_scores, y)",
    "target-named-logits": "loss = F.binary_cross_entropy(p, target=teacher_logits)",
    "mlx-takes-logits": """
        import mlx.nn as mnn
        loss = mnn.losses.binary_cross_entropy(logits, y, with_logits=True)
    """,
    "user-function": """
        from mylosses import binary_cross_entropy
        loss = binary_cross_entropy(logits, y)
    """,
}


@parametrize_snippets(PL006_POSITIVE)
def test_pl006_positive(source: str) -> None:
    assert codes(source) == ["PL006"]


@parametrize_snippets(PL006_NEGATIVE)
def test_pl006_negative(source: str) -> None:
    assert codes(source) == []


# --------------------------------------------------------------------------------------------
# PL007: logits averaged over samples before prediction.

PL007_POSITIVE = {
    "softmax-of-mean": "probs = F.softmax(logits.mean(0), dim=-1)",
    "keyword-dim": "probs = logits.mean(dim=0).softmax(-1)",
    "argmax-through-name": """
        avg = logits.mean(0)
        pred = avg.argmax(-1)
    """,
    "torch-mean": "pred = torch.argmax(torch.mean(logits, 0), dim=-1)",
    "numpy-axis": "pred = np.argmax(np.mean(sample_logits, axis=0), axis=-1)",
    "predictive-samples": """
        samples = pyro.infer.Predictive(model, guide=guide, num_samples=100)(x)
        probs = samples["logits"].mean(0).softmax(-1)
    """,
    "stacked": """
        logit_list = [net(x) for net in nets]
        d = dist.Categorical(logits=torch.stack(logit_list).mean(0))
    """,
    "sigmoid": "p = torch.sigmoid(logits.mean(0))",
    "training-on-averaged-logits": """
        for x, y in train_loader:
            sample_logits = torch.stack([net(x) for _ in range(3)])
            loss = F.nll_loss(F.log_softmax(sample_logits.mean(0), dim=1), y)
    """,
}

PL007_NEGATIVE = {
    "probabilities-averaged": "probs = logits.softmax(-1).mean(0)",
    "not-a-prediction": "loss = logits.mean(0).sum()",
    "other-dim": "probs = logits.mean(-1).softmax(-1)",
    "other-name": "probs = x.mean(0).softmax(-1)",
    "all-dims": "probs = torch.sigmoid(logits.mean())",
    "reassigned": """
        avg = logits.mean(0)
        avg = logits.softmax(-1).mean(0)
        pred = avg.argmax(-1)
    """,
}


@parametrize_snippets(PL007_POSITIVE)
def test_pl007_positive(source: str) -> None:
    assert codes(source) == ["PL007"]


@parametrize_snippets(PL007_NEGATIVE)
def test_pl007_negative(source: str) -> None:
    assert codes(source) == []


def test_pl007_reports_the_mean_once() -> None:
    (finding,) = findings(
        """
        avg = logits.mean(0)
        pred = avg.argmax(-1)
        probs = avg.softmax(-1)
        """
    )
    assert (finding.code, finding.line, finding.col) == ("PL007", HEADER.count("\n") + 2, 7)


# --------------------------------------------------------------------------------------------
# PL008 and PL009: log-probabilities or logits passed as probs.

PL008_POSITIVE = {
    "categorical-positional": "d = dist.Categorical(F.log_softmax(z, -1))",
    "bernoulli-positional": "d = dist.Bernoulli(F.logsigmoid(z))",
    "probs-keyword": """
        lp = F.log_softmax(z, dim=-1)
        d = dist.Categorical(probs=lp)
    """,
    "one-hot": "d = dist.OneHotCategorical(torch.log_softmax(z, -1))",
    "multinomial-second": "d = dist.Multinomial(10, F.log_softmax(z, -1))",
}

PL008_NEGATIVE = {
    "softmax-probs": "d = dist.Categorical(F.softmax(z, -1))",
    "multinomial-first-is-count": "d = dist.Multinomial(F.log_softmax(z, -1))",
    "numpyro-logits-class": "d = dist.CategoricalLogits(logits)",
}

PL009_POSITIVE = {
    "categorical": "d = dist.Categorical(logits)",
    "bernoulli": "d = dist.Bernoulli(y_logits)",
    "probs-keyword": "d = dist.Categorical(probs=logits)",
    "attribute": "d = dist.Categorical(self.logits)",
    "binomial-second": "d = dist.Binomial(n, logits)",
    "network-output": "d = dist.Categorical(self.to_logits(h))",
}

PL009_NEGATIVE = {
    "keyword": "d = dist.Categorical(logits=logits)",
    "probs": "d = dist.Categorical(probs)",
    "softmax-of-logits": "d = dist.Categorical(logits.softmax(-1))",
    "binomial-first-is-count": "d = dist.Binomial(logits)",
    "misnamed-probabilities": """
        logits = F.softmax(z, -1)
        d = dist.Categorical(logits)
    """,
    "converted": "d = dist.Categorical(logits_to_probs(logits))",
    "numpyro-logits-class": "d = dist.BernoulliLogits(logits)",
    "tensorflow-probability-logits-first": """
        import tensorflow_probability as tfp
        tfd = tfp.distributions
        d = tfd.Categorical(logits)
    """,
    "distrax-logits-first": """
        import distrax
        d = distrax.Categorical(logits)
    """,
    "unknown-library": "d = mylib.Categorical(logits)",
    "user-class": """
        class Categorical:
            def __init__(self, logits):
                self.logits = logits

        d = Categorical(logits)
    """,
}


@parametrize_snippets(PL008_POSITIVE)
def test_pl008_positive(source: str) -> None:
    assert codes(source) == ["PL008"]


@parametrize_snippets(PL008_NEGATIVE)
def test_pl008_negative(source: str) -> None:
    assert codes(source) == []


@parametrize_snippets(PL009_POSITIVE)
def test_pl009_positive(source: str) -> None:
    assert codes(source) == ["PL009"]


@parametrize_snippets(PL009_NEGATIVE)
def test_pl009_negative(source: str) -> None:
    assert codes(source) == []


# --------------------------------------------------------------------------------------------
# Following values.


def test_tracking_through_straight_line_code_and_merges() -> None:
    source = """
        def model(x, y):
            lhat = F.log_softmax(net(x), dim=-1)
            other = lhat
            with pyro.plate("data", len(x)):
                pyro.sample("y", dist.Categorical(logits=other), obs=y)
            if y is None:
                pass
            pyro.sample("y2", dist.Categorical(logits=lhat), obs=y)
            for _ in range(2):
                pyro.sample("y3", dist.Categorical(logits=lhat), obs=y)
            try:
                lhat = lhat + 0
            except ValueError:
                pass
            pyro.sample("y4", dist.Categorical(logits=lhat), obs=y)
    """
    lines = [f.line - HEADER.count("\n") for f in findings(source)]
    assert lines == [6, 9, 11]  # not y4: the try body may have changed lhat


def test_tracking_tuple_assignment_and_walrus() -> None:
    assert codes("a, b = torch.sigmoid(z), z\nd = dist.Bernoulli(logits=a)") == ["PL003"]
    assert codes("a, b = torch.sigmoid(z), z\nd = dist.Bernoulli(logits=b)") == []
    assert codes("a, b = f(z)\nd = dist.Bernoulli(logits=a)") == []
    assert codes("if (p := torch.sigmoid(z)) is not None:\n    d = dist.Bernoulli(logits=p)") == [
        "PL003"
    ]


def test_tracking_does_not_cross_scopes() -> None:
    source = """
        p = torch.sigmoid(z)

        def f(x):
            return dist.Bernoulli(logits=p)

        ps = [dist.Bernoulli(logits=p) for p in range(3)]
        g = lambda p: dist.Bernoulli(logits=p)
    """
    assert codes(source) == []


def test_self_call_uses_forward() -> None:
    source = """
        class Net(nn.Module):
            def forward(self, x):
                return torch.sigmoid(self.fc(x))

            def model(self, x, y):
                pyro.sample("y", dist.Bernoulli(logits=self(x)), obs=y)
    """
    assert codes(source) == ["PL003"]


def test_recursion_does_not_loop() -> None:
    source = """
        def f(z):
            return f(z)

        def g(z):
            return torch.sigmoid(h(z))

        def h(z):
            return g(z)

        d = dist.Bernoulli(logits=f(z))
        d = dist.Bernoulli(logits=g(z))
    """
    assert codes(source) == ["PL003"]


def test_every_node_type_is_walked() -> None:
    source = """
        async def f(x):
            async with lock:
                await g(x)
            async for item in stream:
                yield item
            match x:
                case [a, *rest] if a:
                    del a
                case {"k": v, **others}:
                    pass
            global counter
            assert x, f"{x!r}"
            raise ValueError(x) from None

        @decorator(lambda: 0)
        class C(Base, metaclass=Meta):
            attribute: int = 3
            other: int

            @staticmethod
            def s(x, *args, key=None, **kwargs):
                return {k: v for k, v in kwargs.items()}, {*args}, (x for x in args)
    """
    assert codes(source) == []


# --------------------------------------------------------------------------------------------
# Suppression, positions, parse errors.


def test_noqa() -> None:
    base = "d = dist.Bernoulli(logits=torch.sigmoid(z))"
    assert codes(base + "  # noqa") == []
    assert codes(base + "  # noqa: PL003") == []
    assert codes(base + "  # NOQA:PL001,PL003") == []
    assert codes(base + "  # noqa: PL001") == ["PL003"]
    assert codes(base + "  # noqa: E501") == ["PL003"]


def test_noqa_goes_on_the_line_of_the_argument() -> None:
    source = """
        d = dist.Categorical(
            logits=F.softmax(z, dim=-1),  # noqa: PL003
        )
        e = dist.Categorical(  # noqa: PL003
            logits=F.softmax(z, dim=-1),
        )
    """
    assert [f.line - HEADER.count("\n") for f in findings(source)] == [6]


def test_columns_count_characters_not_bytes() -> None:
    (finding,) = lint.lint_source("é = 'ü'; d = dist.Bernoulli(logits=torch.sigmoid(z))")
    assert finding.col == len("é = 'ü'; d = dist.Bernoulli(logits=") + 1


def test_syntax_error_is_a_finding() -> None:
    (finding,) = lint.lint_source("x = 1\ndef f(:\n    pass\n", path="bad.py")
    assert (finding.code, finding.line) == ("PL000", 2)
    assert str(finding).startswith("bad.py:2:")
    assert "cannot parse as Python 3." in finding.message


def test_null_bytes_and_deep_nesting_are_findings() -> None:
    assert [f.code for f in lint.lint_source("x = 1\x00")] == ["PL000"]
    deep = "x = " + "(" * 2000 + "1" + ")" * 2000
    assert [f.code for f in lint.lint_source(deep)] == ["PL000"]
    (finding,) = lint.lint_source("x = a" + ".b" * 5000)
    assert (finding.code, finding.message) == ("PL000", "too deeply nested to analyse")


def test_long_operator_chains_are_analysed() -> None:
    chain = " + ".join(["a"] * 900)
    assert codes(f"d = dist.Bernoulli(logits=torch.sigmoid({chain}))") == ["PL003"]


def test_invalid_escape_sequences_do_not_warn() -> None:
    assert lint.lint_source('pattern = "\\d+"\n') == []


def test_rules_table_is_complete() -> None:
    assert list(lint.RULES) == [f"PL00{i}" for i in range(10)]
    for rule in lint.RULES.values():
        assert rule.summary and rule.why and rule.fix


def test_linter_imports_only_the_standard_library() -> None:
    package = Path(lint.__file__).parent
    imported: set[str] = set()
    for source in package.rglob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                imported.add((node.module or "").split(".")[0])
    assert imported - {"pyro_logits_lint"} <= set(sys.stdlib_module_names)


# --------------------------------------------------------------------------------------------
# Notebooks.


def notebook(*cells: tuple[str, str], language: str | None = None) -> str:
    metadata = {"kernelspec": {"language": language}} if language else {}
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": source.splitlines(True)}
                for kind, source in cells
            ],
            "metadata": metadata,
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_notebook_cells_lines_and_magics() -> None:
    text = notebook(
        ("markdown", "# A model\n"),
        (
            "code",
            "%matplotlib inline\n!pip install pyro-ppl\nimport torch\nimport pyro.distributions as dist\n",
        ),
        ("code", "files = !ls\ntorch.sigmoid?\np = torch.sigmoid(z)\n"),
        ("code", "%%bash\necho 'dist.Bernoulli(logits=torch.sigmoid(z))'\n"),
        ("code", "%%time\nd = dist.Bernoulli(logits=p)\n"),
        ("code", "e = dist.Bernoulli(logits=p)  # noqa: PL003\n"),
    )
    (finding,) = lint.lint_notebook(text, path="nb.ipynb")
    assert str(finding).startswith(
        "nb.ipynb:cell 5:2:27: PL003 `torch.sigmoid` output (cell 3, line 3)"
    )


def test_notebook_bad_cell_is_a_finding_and_the_rest_is_checked() -> None:
    text = notebook(
        ("code", "import torch\np = torch.sigmoid(z)\n"),
        ("code", "def broken(:\n"),
        ("code", "d = Bernoulli(logits=p)\n"),
    )
    found = [(f.code, f.cell, f.line) for f in lint.lint_notebook(text, path="nb.ipynb")]
    assert found == [("PL000", 2, 1), ("PL003", 3, 1)]


def test_notebook_percent_continuing_an_expression_is_python() -> None:
    source = "import torch\nx = (a\n     % b)\nd = Bernoulli(logits=z.sigmoid())\n"
    found = lint.lint_notebook(notebook(("code", source)))
    assert [(f.code, f.line) for f in found] == [("PL003", 4)]


def test_malformed_notebooks_do_not_crash() -> None:
    odd = {
        "cells": [{"cell_type": "code", "source": [1, 2]}, "not a cell"],
        "metadata": ["not", "a", "dict"],
    }
    assert lint.lint_notebook(json.dumps(odd)) == []


def test_notebook_other_language_and_bad_json() -> None:
    r_code = ("code", "if (x > 1) { print(x) }\n")
    found = lint.lint_notebook(notebook(r_code), path="r.ipynb")
    assert [(f.code, f.cell) for f in found] == [("PL000", 1)]
    assert lint.lint_notebook(notebook(r_code, language="R"), path="r.ipynb") == []
    assert [f.code for f in lint.lint_notebook("{not json", path="x.ipynb")] == ["PL000"]
    assert [f.code for f in lint.lint_notebook("[]", path="x.ipynb")] == ["PL000"]


# --------------------------------------------------------------------------------------------
# Files, directories and the command line.

BAD = (
    "import torch\nimport pyro.distributions as dist\nd = dist.Bernoulli(logits=torch.sigmoid(z))\n"
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(BAD)
    (tmp_path / "pkg" / "good.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "notes.txt").write_text(BAD)
    for skipped in (".venv", "__pycache__", "build", "dist", "node_modules", ".hidden"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "bad.py").write_text(BAD)
    (tmp_path / "nb.ipynb").write_text(notebook(("code", BAD)))
    return tmp_path


def test_directories_are_walked_skipping_environments(tree: Path) -> None:
    found = lint.lint_paths([tree])
    assert [(Path(f.path).relative_to(tree).as_posix(), f.cell, f.line) for f in found] == [
        ("nb.ipynb", 1, 3),
        ("pkg/bad.py", 0, 3),
    ]


def test_files_that_cannot_be_decoded_or_parsed(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b"name = '\xe9'\n")
    (tmp_path / "syntax.py").write_text("def f(:\n")
    (tmp_path / "ok.py").write_text(BAD)
    found = [(Path(f.path).name, f.code) for f in lint.lint_paths([tmp_path])]
    assert found == [("latin.py", "PL000"), ("ok.py", "PL003"), ("syntax.py", "PL000")]


def test_declared_encoding_is_honoured(tmp_path: Path) -> None:
    file = tmp_path / "latin.py"
    file.write_bytes(b"# -*- coding: latin-1 -*-\nname = '\xe9'\n")
    assert lint.lint_file(file) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    file = tmp_path / "secret.py"
    file.write_text("x = 1\n")
    file.chmod(0)
    try:
        assert [f.code for f in lint.lint_file(file)] == ["PL000"]
    finally:
        file.chmod(0o600)


def test_main_exit_codes(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lint.main([str(tree / "pkg" / "good.py")]) == 0
    assert capsys.readouterr().out == ""
    assert lint.main([str(tree / "pkg")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{tree / 'pkg' / 'bad.py'}:3:27: PL003 ")
    assert lint.main([str(tree / "pkg"), "--ignore", "PL003"]) == 0
    assert lint.main([str(tree / "pkg"), "--select", "PL001,PL004"]) == 0
    assert lint.main([str(tree / "pkg"), "--select", "pl003"]) == 1
    capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        ([], "no paths given"),
        (["does-not-exist.py"], "does-not-exist.py: no such file or directory"),
        (["--unknown", "x.py"], "unrecognized arguments: --unknown"),
        (["--select", "PL999", "."], "unknown rule code 'PL999'"),
    ],
)
def test_main_usage_errors(argv: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert lint.main(argv) == 2
    assert error in capsys.readouterr().err


def test_cli_dispatch(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lint.cli(["lint", str(tree / "pkg" / "good.py")]) == 0
    assert lint.cli(["lint", str(tree / "pkg")]) == 1
    assert lint.cli([]) == 2
    assert lint.cli(["check", "x.py"]) == 2
    assert "expected the command 'lint'" in capsys.readouterr().err
    assert lint.cli(["--help"]) == 0
    assert lint.cli(["lint", "--help"]) == 0
    assert "pyro-logits lint" in capsys.readouterr().out


def test_python_dash_m(tree: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pyro_logits_lint", str(tree / "pkg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert ": PL003 " in result.stdout


def test_flake8_plugin_yields_zero_based_columns() -> None:
    source = "d = dist.Bernoulli(logits=torch.sigmoid(z))  # noqa\n"
    checker = lint.Flake8Checker(ast.parse(source), source.splitlines(True))
    ((line, col, text, kind),) = checker.run()
    assert (line, col, text[:6], kind) == (1, 26, "PL003 ", lint.Flake8Checker)


def test_the_project_itself_lints_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """Deliberate misuse in the tests carries a ``# noqa``; everything else must be clean."""
    root = REPO_ROOT
    paths = [str(root / d) for d in ("src", "lint", "tests", "models", "benchmarks")]
    assert lint.main(paths) == 0, capsys.readouterr().out
