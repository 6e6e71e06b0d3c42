"""Get logits, probabilities and likelihoods right in Pyro models.

Likelihood helpers (:func:`bernoulli`, :func:`categorical`, :func:`observe_bernoulli`,
:func:`observe_categorical`), run-time checks (:func:`check_logits`, :func:`diagnose` and the
:class:`LogitsWarning` family) and conversions between logits and probabilities. The Bayesian
neural network is :mod:`pyro_logits.bnn`, the data sets :mod:`pyro_logits.datasets`, the
metrics :mod:`pyro_logits.metrics`; the static linter is its own package,
:mod:`pyro_logits_lint`.
"""

from pyro_logits_lint import __version__ as __version__  # one version, kept with the linter

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
    ProvenanceUnavailableWarning,
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
    "ProvenanceUnavailableWarning",
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
