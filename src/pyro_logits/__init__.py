"""Get logits, probabilities and likelihoods right in Pyro models.

The public names are imported on first use. The static linter is its own package,
:mod:`pyro_logits_lint`, which needs neither torch nor Pyro.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(
        [
            "Diagnosis",
            "LogProbsAsProbsWarning",
            "LogSigmoidAsLogitsWarning",
            "LogSoftmaxAsLogitsWarning",
            "LogitsAsLogProbsWarning",
            "LogitsAsProbsWarning",
            "LogitsWarning",
            "NormalizedOverWrongDimWarning",
            "ProbsAsLogProbsWarning",
            "ProbsAsLogitsWarning",
            "diagnose",
        ],
        "checks",
    ),
    **dict.fromkeys(
        [
            "binary_to_categorical_logits",
            "categorical_to_binary_logits",
            "log_mean_exp",
            "logit",
            "logits_to_probs",
            "predictive_log_probs",
            "probs_to_logits",
        ],
        "convert",
    ),
    **dict.fromkeys(["bernoulli", "categorical"], "likelihoods"),
    **dict.fromkeys(["CheckLogitsMessenger", "check_logits"], "messenger"),
    **dict.fromkeys(["observe_bernoulli", "observe_categorical"], "observe"),
}

__all__ = [
    "CheckLogitsMessenger",
    "Diagnosis",
    "LogProbsAsProbsWarning",
    "LogSigmoidAsLogitsWarning",
    "LogSoftmaxAsLogitsWarning",
    "LogitsAsLogProbsWarning",
    "LogitsAsProbsWarning",
    "LogitsWarning",
    "NormalizedOverWrongDimWarning",
    "ProbsAsLogProbsWarning",
    "ProbsAsLogitsWarning",
    "bernoulli",
    "binary_to_categorical_logits",
    "categorical",
    "categorical_to_binary_logits",
    "check_logits",
    "diagnose",
    "log_mean_exp",
    "logit",
    "logits_to_probs",
    "observe_bernoulli",
    "observe_categorical",
    "predictive_log_probs",
    "probs_to_logits",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyro_logits' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pyro_logits.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from pyro_logits.checks import (
        Diagnosis,
        LogitsAsLogProbsWarning,
        LogitsAsProbsWarning,
        LogitsWarning,
        LogProbsAsProbsWarning,
        LogSigmoidAsLogitsWarning,
        LogSoftmaxAsLogitsWarning,
        NormalizedOverWrongDimWarning,
        ProbsAsLogitsWarning,
        ProbsAsLogProbsWarning,
        diagnose,
    )
    from pyro_logits.convert import (
        binary_to_categorical_logits,
        categorical_to_binary_logits,
        log_mean_exp,
        logit,
        logits_to_probs,
        predictive_log_probs,
        probs_to_logits,
    )
    from pyro_logits.likelihoods import bernoulli, categorical
    from pyro_logits.messenger import CheckLogitsMessenger, check_logits
    from pyro_logits.observe import observe_bernoulli, observe_categorical
