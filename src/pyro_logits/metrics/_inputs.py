"""What every metric checks of its inputs: normalised log-probabilities and class labels."""

from __future__ import annotations

import math

import torch

from pyro_logits.labels import check_class_labels


def check_log_probs(log_probs: torch.Tensor, name: str = "log_probs") -> torch.Tensor:
    """Validate ``(N, C)`` normalised log-probabilities and return them in float64."""
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 2:
        shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else type(log_probs)
        raise ValueError(f"Expected {name} of shape (N, C) but got {shape}.")
    if log_probs.shape[0] == 0 or log_probs.shape[1] == 0:
        raise ValueError(f"Expected {name} with N > 0 and C > 0 but got {tuple(log_probs.shape)}.")
    if not log_probs.is_floating_point():
        raise ValueError(f"Expected floating-point {name} but got {log_probs.dtype}.")
    if torch.isnan(log_probs).any() or (log_probs == math.inf).any():
        raise ValueError(f"Expected {name} without NaN or +inf but found some.")
    tol = max(1e-3, torch.finfo(log_probs.dtype).eps ** 0.5)
    checked = log_probs.detach().to(torch.float64)
    totals = torch.logsumexp(checked, dim=-1)
    worst = int(totals.abs().argmax())
    if abs(float(totals[worst])) > tol:
        raise ValueError(
            f"Expected normalised {name} (logsumexp over classes = 0) but row {worst} has "
            f"logsumexp {float(totals[worst]):.4g}. If these are logits, pass "
            "torch.log_softmax(logits, dim=-1); if probabilities, pass their log."
        )
    return checked


def check_inputs(
    log_probs: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    log_probs = check_log_probs(log_probs)
    n, c = log_probs.shape
    if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels)
        raise ValueError(f"Expected labels of shape ({n},) to match log_probs but got {shape}.")
    check_class_labels(labels, c, where="labels")
    return log_probs, labels.to(log_probs.device, torch.int64)


def label_nlls(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Checked per-example negative log-likelihoods of the labels, float64 ``(N,)``."""
    log_probs, labels = check_inputs(log_probs, labels)
    return -log_probs.gather(-1, labels[:, None]).squeeze(-1)
