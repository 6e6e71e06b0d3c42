"""The README's Python examples run as written and do what the text says."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import pyro_logits as pl

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md block {i}", "exec"), namespace)
    out = capsys.readouterr().out
    assert out.startswith("468.75\n")
    assert "468.75 torch.Size([128])\n" in out  # the VAE's site, in its own subsampled plate
    # The checks examples misuse softmax output as logits, and are told so once each.
    found = [w for w in caught if issubclass(w.category, pl.LogitsWarning)]
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning] * 2
    assert "sample site 'obs'" in str(found[0].message)
    assert str(found[1].message).startswith("F.cross_entropy (called by nn.CrossEntropyLoss)")
