"""The check of class labels, shared by the observe helpers, the metrics and the classifier."""

from __future__ import annotations

import torch

__all__ = ["check_class_labels"]


def check_class_labels(
    labels: object, num_classes: int, *, where: str, integral_floats: bool = False
) -> None:
    """Raise a clear :class:`ValueError` unless ``labels`` are class indices in ``[0, C)``.

    Parameters
    ----------
    labels : object
        What was given as labels.
    num_classes : int
        The number of classes ``C``.
    where : str
        What the labels are, for the message (``"obs for site 'y'"``, ``"labels"``).
    integral_floats : bool, default False
        Accept floats that hold whole numbers (``tensor([0., 2.])``), as Pyro sites do.

    Raises
    ------
    ValueError
        On a non-tensor, a bool, complex or (unless allowed) floating dtype, a non-integer
        value, or a label outside ``[0, C)``.

    Examples
    --------
    >>> check_class_labels(torch.tensor([0, 9]), 10, where="labels")
    >>> check_class_labels(torch.tensor([0, 10]), 10, where="labels")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Expected class labels in [0, 9] for labels (10 classes) but got 10; check...
    """
    if not isinstance(labels, torch.Tensor):
        raise ValueError(
            f"Expected integer class labels for {where} in a torch.Tensor but got "
            f"{type(labels).__name__}."
        )
    floating = labels.is_floating_point()
    if labels.dtype == torch.bool or labels.is_complex() or (floating and not integral_floats):
        raise ValueError(
            f"Expected integer class labels for {where} but got {labels.dtype}; use .long() "
            f"(or argmax for one-hot targets)."
        )
    if floating and (labels != labels.floor()).any():
        raise ValueError(
            f"Expected integer class labels for {where} but got non-integer values such as "
            f"{labels[labels != labels.floor()].flatten()[0].item()!r}; labels are class "
            f"indices (use .long(), or argmax for one-hot targets)."
        )
    out = (labels < 0) | (labels >= num_classes)
    if out.any():
        raise ValueError(
            f"Expected class labels in [0, {num_classes - 1}] for {where} ({num_classes} "
            f"classes) but got {labels[out].flatten()[0].item()!r}; check the label encoding or "
            f"the number of network outputs."
        )
