"""Evaluation metrics for classifiers that output log-probabilities.

Every metric takes ``log_probs`` of shape ``(N, C)``: normalised log-probabilities, typically
the log posterior-predictive probabilities from
:func:`pyro_logits.convert.predictive_log_probs` (pass ``torch.log_softmax(logits, -1)`` for
a single network's logits), and integer ``labels`` of shape ``(N,)``. Rows are checked to
be normalised, so logits passed by mistake are caught rather than silently scored. Metrics are
computed in float64 and returned as Python floats.

The metrics live in three modules: :mod:`~pyro_logits.metrics.scores` (accuracy, NLL, Brier,
the paired NLL difference of two predictions), :mod:`~pyro_logits.metrics.calibration`
(reliability bins, equal-width and equal-mass ECE) and :mod:`~pyro_logits.metrics.detection`
(out-of-distribution detection by predictive entropy: AUROC, AUPR, FPR at 95% TPR).
"""

from pyro_logits.metrics.calibration import (
    CalibrationBins,
    adaptive_calibration_error,
    calibration_bins,
    expected_calibration_error,
)
from pyro_logits.metrics.detection import (
    aupr,
    auroc,
    fpr_at_tpr,
    ood_auroc,
    ood_scores,
    predictive_entropy,
)
from pyro_logits.metrics.scores import NLLDifference, accuracy, brier_score, nll, nll_difference

__all__ = [
    "CalibrationBins",
    "NLLDifference",
    "accuracy",
    "adaptive_calibration_error",
    "aupr",
    "auroc",
    "brier_score",
    "calibration_bins",
    "expected_calibration_error",
    "fpr_at_tpr",
    "nll",
    "nll_difference",
    "ood_auroc",
    "ood_scores",
    "predictive_entropy",
]
