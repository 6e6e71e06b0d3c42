"""The lint rules (codes, summaries, rationale, fixes) and the finding record."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "Finding", "Rule"]


@dataclass(frozen=True)
class Rule:
    """One lint rule: its stable code, what it finds, why that is wrong and how to fix it."""

    code: str
    summary: str
    why: str
    fix: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "PL000",
            "file could not be read, decoded or parsed",
            "nothing in the file was checked",
            "fix the syntax error or the encoding, or exclude the file",
        ),
        Rule(
            "PL001",
            "log_softmax output as Categorical/OneHotCategorical/Multinomial logits, or as the "
            "input of cross_entropy/CrossEntropyLoss",
            "redundant: these normalise the logits themselves, and log_softmax of "
            "log-probabilities changes nothing; the extra pass costs time and hides intent",
            "pass the raw scores (`Categorical(logits=net(x))`)",
        ),
        Rule(
            "PL002",
            "log_softmax/softmax over dim 0 of a batch (seen from a data loader, a plate or a "
            "reshape), used as class logits, probs or a loss input",
            "dim 0 of a network output is the batch dim: each class is normalised across the "
            "examples of the batch instead of each example across its classes",
            "normalise over the class dim (`dim=-1`), or pass the raw scores as logits",
        ),
        Rule(
            "PL003",
            "softmax/sigmoid output as `logits=` (Bernoulli, Categorical, ...) or as the input of "
            "binary_cross_entropy_with_logits/BCEWithLogitsLoss/cross_entropy/CrossEntropyLoss "
            "(raw scores expected) or nll_loss/NLLLoss (log-probabilities expected)",
            "probabilities are not logits: the distribution or loss applies softmax/sigmoid again "
            "and squashes every prediction towards uniform; training still runs",
            "pass the raw scores; or keep the probabilities and use `probs=`",
        ),
        Rule(
            "PL004",
            "log-probabilities (logsigmoid, log_softmax, log of sigmoid) as Bernoulli-type logits "
            "or binary_cross_entropy_with_logits input",
            "a logit is log(p) - log(1 - p), not log(p): logsigmoid(z) as logits gives "
            "sigmoid(logsigmoid(z)) < 1/2 for every z",
            "pass the raw scores z",
        ),
        Rule(
            "PL005",
            "base-10 log (`log10`, `log(p) / log(10)`, `/ 2.3026`) assigned to a name with "
            "`logit` in it, returned by a function so named, or passed as `logits=`",
            "logits are natural-log odds; base-10 values are 2.3 times too small, so every "
            "probability derived from them is pulled towards 1/2",
            "use `torch.log`/`torch.logit` (natural log)",
        ),
        Rule(
            "PL006",
            "BCELoss/binary_cross_entropy fed a value or module output named like logits "
            "(`logits`, `*_logits`, `scores`, `self.logits(h)`)",
            "BCELoss expects probabilities in [0, 1]; raw scores are rejected at run time at best",
            "use `binary_cross_entropy_with_logits`/`BCEWithLogitsLoss` on the raw scores "
            "(also more stable than sigmoid followed by BCELoss)",
        ),
        Rule(
            "PL007",
            "logits averaged over dim 0 (samples) and then fed to softmax/argmax/logits=",
            "the posterior predictive averages probabilities: softmax(mean(logits)) is not "
            "mean(softmax(logits)) and is over-confident",
            "average probabilities: `logits.softmax(-1).mean(0)`, or "
            "`pyro_logits.predictive_log_probs(logits)` for log-probabilities",
        ),
        Rule(
            "PL008",
            "log-probabilities (log_softmax, logsigmoid) passed as probs (positionally or "
            "`probs=`)",
            "the first positional argument of Categorical/Bernoulli/... is `probs`: "
            "log-probabilities are negative, so the distribution is invalid (or, with "
            "validation off, silently wrong)",
            "pass them as `logits=` (or the raw scores as `logits=`)",
        ),
        Rule(
            "PL009",
            "a value named like logits passed as probs (positionally or `probs=`)",
            "the first positional argument of Categorical/Bernoulli/... is `probs`, so "
            "`Categorical(logits)` treats raw scores as probabilities",
            "write `Categorical(logits=logits)`",
        ),
    )
}


@dataclass(frozen=True, order=True)
class Finding:
    """One finding, printed as ``path:line:col: CODE message``.

    ``line`` and ``col`` are 1-based; for notebooks ``cell`` is the 1-based cell number and
    ``line`` counts within that cell.
    """

    path: str
    cell: int
    line: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        where = f"cell {self.cell}:" if self.cell else ""
        return f"{self.path}:{where}{self.line}:{self.col}: {self.code} {self.message}"
