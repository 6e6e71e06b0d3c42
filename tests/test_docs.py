"""The README's and the documentation's examples run as written and do what the text says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pyro
import pytest
from helpers import REPO_ROOT, edited_run_copy

import pyro_logits as pl

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
LINT_EXAMPLE = re.compile(r"# (PL\d{3}): (bad|fixed)\n")


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, but the linter's rule examples."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
    return [block for block in blocks if not LINT_EXAMPLE.match(block)]


def run_blocks(path: Path) -> list[warnings.WarningMessage]:
    """Run a file's blocks in order, in one namespace; return the warnings they gave."""
    namespace: dict[str, object] = {}
    pyro.clear_param_store()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i, block in enumerate(python_blocks(path)):
            exec(compile(block, f"{path.name} block {i}", "exec"), namespace)
    return caught


def logits_warnings(caught: list[warnings.WarningMessage]) -> list[type[Warning]]:
    return [w.category for w in caught if issubclass(w.category, pl.LogitsWarning)]


def test_readme_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(python_blocks(README)) == 3
    caught = run_blocks(README)
    out = capsys.readouterr().out
    assert out == "468.75\n(5, 10)\n"
    # The checks example misuses softmax output twice, and is told so once each.
    assert logits_warnings(caught) == [pl.ProbsAsLogitsWarning] * 2
    found = [w for w in caught if issubclass(w.category, pl.LogitsWarning)]
    assert "sample site 'obs'" in str(found[0].message)
    assert str(found[1].message).startswith("F.cross_entropy (called by nn.CrossEntropyLoss)")


def test_the_readme_stays_within_its_budget() -> None:
    assert len(README.read_text().splitlines()) <= 300


def test_helpers_guide_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    caught = run_blocks(DOCS / "guide" / "helpers.md")
    out = capsys.readouterr().out
    assert out.startswith("468.75\n")
    assert "468.75 torch.Size([128])\n" in out  # the VAE's site, in its own subsampled plate
    assert logits_warnings(caught) == []


def test_checks_guide_examples_run() -> None:
    caught = run_blocks(DOCS / "guide" / "checks.md")
    assert logits_warnings(caught) == [pl.ProbsAsLogitsWarning] * 2


@pytest.mark.parametrize("page", ["guide/bnn.md", "results/lenet-trials.md"])
def test_bnn_pages_examples_run(page: str) -> None:
    assert python_blocks(DOCS / page) or page == "guide/bnn.md"
    assert logits_warnings(run_blocks(DOCS / page)) == []


def test_every_python_block_of_the_docs_is_run_by_a_test() -> None:
    tested = {"guide/helpers.md", "guide/checks.md", "guide/bnn.md", "results/lenet-trials.md"}
    with_blocks = {
        str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md") if python_blocks(path)
    }
    assert with_blocks <= tested, with_blocks - tested


def _lint_examples() -> list[tuple[str, str, str]]:
    text = (DOCS / "guide" / "lint.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    examples = []
    for block in blocks:
        marker = LINT_EXAMPLE.match(block)
        if marker:
            examples.append((marker[1], marker[2], block))
    return examples


def test_the_linter_guide_has_a_bad_and_a_fixed_example_per_rule() -> None:
    rules = subprocess.run(
        [sys.executable, "-m", "pyro_logits_lint", "--list-rules"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    codes = [line.split()[0] for line in rules.splitlines() if line.split()[0] != "PL000"]
    assert sorted((code, kind) for code, kind, _ in _lint_examples()) == sorted(
        (code, kind) for code in codes for kind in ("bad", "fixed")
    )


@pytest.mark.parametrize(("code", "kind", "source"), _lint_examples())
def test_the_linter_guides_examples_give_what_they_say(
    code: str, kind: str, source: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{code.lower()}_{kind}.py"
    path.write_text(source)
    result = subprocess.run(
        [sys.executable, "-m", "pyro_logits_lint", "--format", "json", "--exit-zero", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = {row["code"] for row in json.loads(result.stdout)}
    assert found == ({code} if kind == "bad" else set()), result.stdout


@pytest.mark.mnist
def test_the_results_pages_are_built_from_the_runs_json(
    seed_runs: list[Path], tmp_path: Path
) -> None:
    runs, pages = tmp_path / "runs", tmp_path / "pages"

    def before_elastic(metrics: dict[str, Any]) -> None:  # a run older than --elastic
        del metrics["config"]["elastic"]

    def on_held_out_images(metrics: dict[str, Any]) -> None:
        metrics["evaluated_on"] = "validation: the last 5000 training images"
        metrics["config"]["validation"] = 5000

    plot = ["reliability.png"]
    older = edited_run_copy(seed_runs[1], tmp_path / "older", before_elastic, keep=plot)
    # seeds 0 and 1 of one config, and seed 2 with another KL weight
    chosen = {"s0": seed_runs[0], "s1": older, "kl1": seed_runs[3]}
    held_out = edited_run_copy(seed_runs[0], tmp_path / "held-out", on_held_out_images, keep=plot)
    adds = [arg for name, run in chosen.items() for arg in ("--add", str(run), name)]
    script = [sys.executable, str(DOCS / "build_results.py")]
    build = subprocess.run(
        [*script, "--runs", str(runs), "--out-dir", str(pages), *adds, "--add", str(held_out), "v"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    assert {p.name for p in pages.iterdir()} == {"index.md", "bnn-lenet.md", "lenet-validation.md"}
    text = (pages / "bnn-lenet.md").read_text()
    written = {name: json.loads((run / "metrics.json").read_text()) for name, run in chosen.items()}
    for name, m in written.items():
        assert f"## `{name}`: lenet, seed {m['config']['seed']}" in text
        assert f"| {100 * m['test_accuracy']:.2f}% | {m['test_nll']:.4f} |" in text
        assert (runs / name / "reliability.png").is_file()
    # the mean is over the two runs that differ in the seed alone
    mean = (written["s0"]["test_nll"] + written["s1"]["test_nll"]) / 2
    assert text.count("| **mean** |") == 1 and f"**{mean:.4f}**" in text
    assert "over 2 seeds" in text
    validation = (pages / "lenet-validation.md").read_text()
    assert "Scored on validation: the last 5000 training images" in validation
    assert "| `v` | `--arch lenet " in validation and "--validation 5000" in validation
    assert "`v`" not in text
    assert {p.name for p in (runs / "v").iterdir()} == {"metrics.json"}  # no plots shown
    index = (pages / "index.md").read_text()
    # the headline is the mean over the seeds of one config, not over configs
    assert "[The Bayesian LeNet-5](bnn-lenet.md) | 2 | mean accuracy" in index
    assert f"NLL {mean:.4f}" in index and "| 3 |" not in index
    assert "(held-out training images)" in index


@pytest.mark.mnist
def test_the_seed_group_with_the_most_seeds_comes_first(
    seed_runs: list[Path], tmp_path: Path
) -> None:
    # "a-*": two seeds with KL weight 1; "b-*": three seeds of the tiny default. The pages are
    # read in name order, so the smaller group is read first
    copies = {"a-kl1": (seed_runs[3], 2), "a-kl1-again": (seed_runs[3], 5)}
    copies |= {"b-s0": (seed_runs[0], 0), "b-s1": (seed_runs[1], 1), "b-s7": (seed_runs[0], 7)}
    adds = []
    for name, (run, seed) in copies.items():
        copy = edited_run_copy(
            run, tmp_path / name, lambda m, seed=seed: m["config"].update(seed=seed)
        )
        adds += ["--add", str(copy), name]
    runs, pages = tmp_path / "runs", tmp_path / "pages"
    script = [sys.executable, str(DOCS / "build_results.py"), "--runs", str(runs)]
    subprocess.run([*script, "--out-dir", str(pages), *adds], check=True, timeout=120)
    text = (pages / "bnn-lenet.md").read_text()
    assert 0 < text.index("over 3 seeds") < text.index("over 2 seeds")
    index = (pages / "index.md").read_text()
    assert 0 < index.index("(bnn-lenet.md) | 3 |") < index.index("(bnn-lenet.md) | 2 |")


def test_the_committed_results_pages_are_what_the_script_writes(tmp_path: Path) -> None:
    script = [sys.executable, str(DOCS / "build_results.py"), "--out-dir", str(tmp_path)]
    subprocess.run(script, check=True)
    committed = DOCS / "results"
    for page in tmp_path.iterdir():
        assert page.read_text() == (committed / page.name).read_text(), page.name
