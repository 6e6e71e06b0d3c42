"""Sinks: the places that expect logits, probabilities or log-probabilities, and the findings."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from .facts import (
    _DISTRIBUTIONS,
    _LOG_KINDS,
    _PROB_KINDS,
    _Args,
    _dim0_message,
    _log_prob_expr,
    _logits_expr,
    _short,
    _Value,
)

ORIGIN_SLOT = "{origin}"  # where a finding's message names the line its value came from

_Check = TypeVar("_Check", bound=Callable[..., None])


def _on_each_path(position: int) -> Callable[[_Check], _Check]:
    """Check each alternative of an ``either`` value (argument ``position``) on its own.

    A network or a loss chosen by path gives one value per path; a mistake on any feasible
    path is reported, saying so. A redundancy (PL001) is not a mistake: it is reported only
    when every path has it.
    """

    def wrap(check: _Check) -> _Check:
        @functools.wraps(check)
        def checked(self: Any, *args: Any) -> None:
            value = args[position]
            if value is not None and value.kind == "either":
                saved = (self.on_path, self.held_back)
                self.on_path, self.held_back = True, []
                try:
                    for one in value.items:
                        checked(self, *args[:position], one, *args[position + 1 :])
                    held = self.held_back
                finally:
                    self.on_path, self.held_back = saved
                # A redundancy every path has is reported once, as any finding.
                if held and len(held) == len(value.items):
                    self.report(*held[0])
                return
            check(self, *args)

        return checked  # type: ignore[return-value]

    return wrap


class _Sinks:
    """Mixin of :class:`~pyro_logits_lint._engine.analysis._Analyzer`: one check per sink."""

    def check_distribution(self, name: str, args: _Args, *, positional: bool) -> None:
        """Check a distribution's arguments; positions only for torch/pyro/numpyro classes."""
        spec = _DISTRIBUTIONS[name]
        for index, expr in enumerate(args.positional if positional else []):
            value = args.values[index]
            if index == spec.probs_pos:
                ordinal = ("first", "second")[index]
                target = f"`{name}` probs (its {ordinal} positional argument is probs)"
                self.check_probs(expr, value, spec.family, target, name)
            elif index == spec.logits_pos:
                self.check_logits(expr, value, spec.family, f"`{name}` logits", f"`{name}`")
        for keyword, family in (("logits", spec.family), ("gate_logits", "binary")):
            if keyword in args.keywords:
                expr, value = args.keywords[keyword]
                self.check_logits(expr, value, family, f"`{name}` {keyword}", f"`{name}`")
        for keyword, family in (("probs", spec.family), ("gate", "binary")):
            if keyword in args.keywords:
                expr, value = args.keywords[keyword]
                self.check_probs(expr, value, family, f"`{name}` {keyword}=", name)

    @staticmethod
    def where(value: _Value, expr: ast.AST) -> str:
        """The slot for " (line N)", where the value was made, if not on this line.

        The report carries the line itself (``origin=value.line``); the slot is filled when the
        findings are turned into messages, in the words of the file's kind (cells for notebooks).
        """
        line = value.line
        return ORIGIN_SLOT if line and line != expr.lineno else ""  # type: ignore[attr-defined]

    @_on_each_path(1)
    def check_logits(
        self,
        expr: ast.expr,
        value: _Value | None,
        family: str | None,
        target: str,
        owner: str = "",
    ) -> None:
        """A place that expects raw scores: ``logits=``, cross_entropy, ..._with_logits."""
        if value is None:
            return
        kind, source, where = value.kind, value.source, self.where(value, expr)
        if kind == "logit_mean":
            self.check_mean(value, target)
        elif kind in _PROB_KINDS:
            self.report(
                expr,
                "PL003",
                f"{source}{where} used as {target}, which expects raw scores (logits), not "
                f"probabilities; pass the scores from before the {kind}",
                origin=value.line,
            )
        elif kind == "logsigmoid" or (kind == "log_softmax" and family == "binary"):
            self.report(
                expr,
                "PL004",
                f"{source}{where} (log-probabilities) used as {target}: a logit is "
                "log(p) - log(1 - p), not log(p); pass the raw scores",
                origin=value.line,
            )
        elif kind == "log_softmax" and family == "categorical":
            if value.dim0 and value.batched:
                self.report(expr, "PL002", _dim0_message(value, where, target), origin=value.line)
            else:
                note = " (it also normalises over dim 0: wrong if dim 0 is a batch dim)"
                self.report(
                    expr,
                    "PL001",
                    f"{source}{where} used as {target}: redundant, {owner} applies log_softmax "
                    f"itself; pass the raw scores{note if value.dim0 else ''}",
                    origin=value.line,
                )
        elif kind == "log10":
            self.check_log10(expr, value, target)

    @_on_each_path(1)
    def check_probs(
        self, expr: ast.expr, value: _Value | None, family: str, target: str, dist: str
    ) -> None:
        """A place that expects probabilities: ``probs=`` or a positional probs argument."""
        if value is not None and value.kind in _LOG_KINDS:
            self.report(
                expr,
                "PL008",
                f"{value.source}{self.where(value, expr)} (log-probabilities) used as {target}; "
                f"pass them as `{dist}(logits=...)`",
                origin=value.line,
            )
        elif value is not None and value.kind == "logit_mean":
            self.check_mean(value, target)
        elif value is not None and value.kind == "softmax" and family == "categorical":
            if value.dim0 and value.batched:
                self.report(
                    expr,
                    "PL002",
                    _dim0_message(value, self.where(value, expr), target),
                    origin=value.line,
                )
        elif (value is None or value.kind == "data") and _log_prob_expr(expr) is not None:
            self.report(
                expr,
                "PL008",
                f"`{_short(expr)}` is named like log-probabilities but is used as {target}; "
                f"pass them as `{dist}(logits={_short(expr)})` (or exp() them first)",
            )
        elif (value is None or value.kind == "data") and _logits_expr(expr) is not None:
            self.report(
                expr,
                "PL009",
                f"`{_short(expr)}` looks like logits but is used as {target}; "
                f"write `{dist}(logits={_short(expr)})`",
            )

    @_on_each_path(3)
    def check_loss(
        self, loss: str, label: str, expr: ast.expr | None, value: _Value | None
    ) -> None:
        if expr is None:
            return
        target = f"the input of {label}"
        if loss == "cross_entropy":
            self.check_logits(expr, value, "categorical", target, label)
        elif loss == "binary_cross_entropy_with_logits":
            self.check_logits(expr, value, "binary", target, label)
        elif loss == "nll_loss" and value is not None:
            where = self.where(value, expr)
            if value.kind in _PROB_KINDS:
                self.report(
                    expr,
                    "PL003",
                    f"{value.source}{where} used as {target}, which expects log-probabilities; "
                    "use log_softmax, or cross_entropy on the raw scores",
                    origin=value.line,
                )
            elif value.kind == "log_softmax" and value.dim0 and value.batched:
                self.report(expr, "PL002", _dim0_message(value, where, target), origin=value.line)
        elif (
            loss == "binary_cross_entropy"
            and (value is None or value.kind == "data")
            and _logits_expr(expr, scores=True) is not None
        ):
            self.report(
                expr,
                "PL006",
                f"`{_short(expr)}` looks like logits but goes to {label}, which expects "
                "probabilities; use binary_cross_entropy_with_logits (BCEWithLogitsLoss) "
                "on the raw scores",
            )

    @_on_each_path(0)
    def check_mean(self, value: _Value | None, target: str) -> None:
        if value is None or value.kind != "logit_mean" or value.node is None or self.muted:
            return
        if value.node not in self.reported_means:
            self.reported_means.add(value.node)
            self.report(
                value.node,
                "PL007",
                f"{value.source} averaged over dim {value.dim or 0} (the samples) and then used "
                f"in {target}: "
                "average probabilities instead (softmax, then mean(0)), "
                "e.g. pyro_logits.predictive_log_probs",
            )

    @_on_each_path(1)
    def check_log10(self, expr: ast.expr, value: _Value | None, target: str) -> None:
        if value is not None and value.kind == "log10":
            self.report(
                expr,
                "PL005",
                f"base-10 log {value.source}{self.where(value, expr)} used as {target}: logits "
                "are natural-log odds (base-10 values are 2.3 times too small); "
                "use torch.log or torch.logit",
                origin=value.line,
            )
