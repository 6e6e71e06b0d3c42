"""Write the results pages (``docs/results/*.md``) from the reference runs' JSON.

Every number on the pages is read from a file under ``docs/results/runs/``: the
``metrics.json`` of ``models/bnn_mnist.py`` and ``models/vae_mnist.py`` runs and the
``shift_summary.json`` of ``models/shift_summary.py``, copied there with the plots the runs drew.
Each run goes to the page of its model (``bnn-lenet.md``, ``bnn-mlp.md``, ``vae.md``); runs
scored on held-out training images (``--validation``) go to ``lenet-validation.md``, and
``index.md`` gives the headline figures of each. ``make docs`` runs this script before Sphinx;
after new reference runs, copy their output directories in
(``python docs/build_results.py --add RUN_DIR NAME``) and build again.

Run: ``python docs/build_results.py [--runs DIR] [--out-dir DIR] [--add RUN_DIR NAME]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyro_logits.bnn.evaluation import complete_config

HERE = Path(__file__).resolve().parent
RUNS = HERE / "results" / "runs"
OUT_DIR = HERE / "results"
KEPT = ("metrics.json", "shift_summary.json", "reliability.png", "entropy_hist.png")
KEPT += ("shift_test.png", "samples.png", "shift_summary.png", "samples_curve.png")
CORRUPTION_TITLES = {
    "clean": "clean",
    "gaussian_blur": "blur",
    "shot_noise": "shot",
    "impulse_noise": "impulse",
    "rotation": "rotation",
    "translation": "translation",
    "contrast": "contrast",
    "inversion": "inversion",
}
# Config entries that do not change what is trained or how it is scored
NOT_TRAINING = {"seed", "out", "data_dir", "threads", "device", "eval_every", "samples_curve"}
NOT_TRAINING |= {"shift_test_samples", "baseline", "test_size"}
PAGES = {
    "bnn-lenet": "The Bayesian LeNet-5",
    "bnn-mlp": "The Bayesian MLP",
    "vae": "The VAE",
    "lenet-validation": "The Bayesian LeNet-5 on held-out training images",
}


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    """A Markdown table."""
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def pct(value: float) -> str:
    """A fraction as a percentage with two decimals."""
    return f"{100 * value:.2f}%"


def load(runs: Path) -> dict[str, dict[str, Any]]:
    """Each run directory's JSON, by directory name."""
    found = {}
    for directory in sorted(p for p in runs.iterdir() if p.is_dir()):
        for name in ("metrics.json", "shift_summary.json"):
            if (directory / name).is_file():
                found[directory.name] = json.loads((directory / name).read_text())
    return found


def bnn_section(name: str, m: dict[str, Any], runs_dir: Path) -> list[str]:
    """A Bayesian network's run: scores, times, the shift test, its plots."""
    c = m["config"]
    lines = [f"## `{name}`: {c['arch']}, seed {c['seed']}", ""]
    lines += [
        f"`{describe_flags(c)}`; {m['epochs']} epochs, {m['world_size']} process(es); "
        f"training {sum(m['seconds_per_epoch']) / 60:.1f} minutes and the evaluation "
        f"{m['eval_seconds'] / 60:.1f} on the machine it ran on; torch "
        f"{m['versions']['torch']}, Pyro {m['versions']['pyro']}.",
        "",
    ]
    ood = m["ood_auroc"]
    ratio = m["seconds_per_epoch_ratio_to_baseline"]
    header = ["test accuracy", "test NLL", "ECE (15 bins)", "Brier", "OOD AUROC rotated / noise"]
    header += ["s/epoch (median)", "ratio to the plain network"]
    lines += table(
        header,
        [
            [
                pct(m["test_accuracy"]),
                f"{m['test_nll']:.4f}",
                pct(m["test_ece"]),
                f"{m['test_brier']:.4f}",
                f"{ood['rotated']:.3f} / {ood['noise']:.3f}",
                f"{statistics.median(m['seconds_per_epoch']):.2f}",
                f"{ratio:.2f}x" if ratio else "-",
            ]
        ],
    )
    if "ood_detection" in m:
        keys = ("auroc", "aupr_in", "aupr_out")
        rows = [
            [name, *(f"{d[key]:.4f}" for key in keys), pct(d["fpr_at_95_tpr"])]
            for name, d in m["ood_detection"].items()
        ]
        lines += table(
            ["OOD set (by entropy)", "AUROC", "AUPR-In", "AUPR-Out", "FPR at 95% TPR"], rows
        )
    if "test_ece_adaptive" in m:
        lines += [f"ECE with 15 equal-mass bins: {pct(m['test_ece_adaptive'])}.", ""]
    if "samples_curve" in m:
        rows = [
            [
                r["samples"],
                pct(r["accuracy"]),
                f"{r['nll']:.4f}",
                pct(r["ece"]),
                f"{r['seconds']:.2f}",
            ]
            for r in m["samples_curve"]
        ]
        lines += table(["posterior samples", "accuracy", "NLL", "ECE", "seconds"], rows)
    lines += shift_table(m)
    for png, title in (
        ("reliability.png", "Reliability diagram"),
        ("entropy_hist.png", "Predictive entropy"),
        ("shift_test.png", "Shift test"),
        ("samples_curve.png", "Against the number of posterior samples"),
    ):
        if (runs_dir / name / png).is_file():
            lines += [f"![{title}, {name}](runs/{name}/{png})", ""]
    return lines


def shift_table(m: dict[str, Any]) -> list[str]:
    """Accuracy and NLL of each network on the clean and each corrupted test set."""
    shift = m["shift_test"]
    names = list(shift)
    rows = []
    for net in ("bnn", "plain"):
        if net in shift[names[0]]:
            rows.append([f"{net} accuracy", *(pct(shift[n][net]["accuracy"]) for n in names)])
            rows.append([f"{net} NLL", *(f"{shift[n][net]['nll']:.4f}" for n in names)])
    diffs = m.get("shift_test_nll_difference") or {}
    if diffs:
        rows.append(
            ["NLL bnn - plain [95%]"]
            + [
                f"{diffs[n]['mean']:+.4f} [{diffs[n]['low']:+.4f}, {diffs[n]['high']:+.4f}]"
                for n in names
            ]
        )
    samples = m.get("shift_test_samples")
    header = [f"shift test ({samples} samples)", *(CORRUPTION_TITLES.get(n, n) for n in names)]
    return table(header, rows)


def describe_flags(config: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """The training flags of a run, as its command line would give them.

    ``names`` maps other runs' output directories to their names on the pages, for the run an
    ``--init-from`` checkpoint came from.
    """
    keys = ("arch", "epochs", "batch_size", "lr", "lr_decay", "kl_weight", "estimator", "shift")
    flags = [f"--{k.replace('_', '-')} {config[k]}" for k in keys if k in config]
    for key in ("elastic", "kl_warmup", "validation", "train_size", "threads"):
        if config.get(key):
            flags.append(f"--{key.replace('_', '-')} {config[key]}")
    if config.get("init_from"):
        source = str(Path(config["init_from"]).parent)
        flags.append(f"--init-from {(names or {}).get(source, source)}/checkpoint.pt")
        flags.append(f"--init-scale-fraction {config['init_scale_fraction']}")
    return " ".join(flags)


def training_config(config: dict[str, Any]) -> str:
    """What a run trained, as a key: its config less the seed and what does not train."""
    config = complete_config(config)  # a run older than a flag ran at the flag's earlier value
    return json.dumps({k: v for k, v in config.items() if k not in NOT_TRAINING}, sort_keys=True)


def training_minutes(m: dict[str, Any]) -> float:
    """Minutes the Bayesian network trained (the plain one alongside not counted)."""
    return float(sum(m["seconds_per_epoch"])) / 60


def trained_runs(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The runs that trained a model (not the shift summaries over them)."""
    return {name: m for name, m in runs.items() if "config" in m and "seeds" not in m}


def seed_groups(runs: dict[str, dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """The trained runs that differ in the seed alone, per training config, two or more a group.

    The groups with the most seeds come first.
    """
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for name, m in trained_runs(runs).items():
        groups.setdefault(training_config(m["config"]), {})[name] = m
    return sorted((group for group in groups.values() if len(group) >= 2), key=len, reverse=True)


def mean_scores(runs: Iterable[dict[str, Any]]) -> tuple[float, float, float]:
    """The mean test accuracy, NLL and ECE of ``runs``."""
    found = list(runs)
    accuracy, nll, ece = (
        statistics.fmean(m[key] for m in found) for key in ("test_accuracy", "test_nll", "test_ece")
    )
    return accuracy, nll, ece


def seeds_section(runs: dict[str, dict[str, Any]], title: str) -> list[str]:
    """Runs that differ in the seed alone: one row each and the mean, per training config."""
    lines = []
    for group in seed_groups(runs):
        first = next(iter(group.values()))
        rows = [
            [
                f"`{name}`",
                m["config"]["seed"],
                pct(m["test_accuracy"]),
                f"{m['test_nll']:.4f}",
                pct(m["test_ece"]),
                pct(m["test_ece_adaptive"]) if "test_ece_adaptive" in m else "-",
                f"{training_minutes(m):.1f}",
            ]
            for name, m in group.items()
        ]
        accuracy, nll, ece = mean_scores(group.values())
        adaptive = [m["test_ece_adaptive"] for m in group.values() if "test_ece_adaptive" in m]
        rows.append(
            [
                "**mean**",
                "",
                f"**{pct(accuracy)}**",
                f"**{nll:.4f}**",
                f"**{pct(ece)}**",
                f"**{pct(statistics.fmean(adaptive))}**" if len(adaptive) == len(group) else "-",
                f"**{statistics.fmean(training_minutes(m) for m in group.values()):.1f}**",
            ]
        )
        header = ["run", "seed", "accuracy", "NLL", "ECE (15 bins)", "ECE (equal-mass)"]
        header.append("training (min)")
        lines += [f"## {title} over {len(group)} seeds", ""]
        lines += [f"`{describe_flags(first['config'])}`", ""]
        lines += table(header, rows)
    return lines


def shift_summary_section(name: str, s: dict[str, Any], runs_dir: Path) -> list[str]:
    """The shift test over seeds: mean NLL of each network and the verdicts."""
    rows = []
    for corruption, row in s["shift_test"].items():
        diff = row.get("nll_difference", {})
        rows.append(
            [
                CORRUPTION_TITLES.get(corruption, corruption),
                f"{row['bnn']['nll']['mean']:.4f}",
                f"{row['plain']['nll']['mean']:.4f}",
                f"{row['bnn_lower_nll_in']} of {len(s['seeds'])}",
                diff.get("bnn_lower_beyond_noise_in", "-"),
                diff.get("plain_lower_beyond_noise_in", "-"),
                diff.get("within_noise_in", "-"),
            ]
        )
    header = ["test set", "NLL bnn (mean)", "NLL plain (mean)", "bnn lower in"]
    header += ["bnn lower beyond noise", "plain lower beyond noise", "within noise"]
    lines = [f"## Shift test over seeds {s['seeds']} (`{name}`)", ""]
    lines += [
        "Beyond the test set's noise: the paired bootstrap interval of the NLL difference "
        "(95%, over the test images) excludes 0.",
        "",
    ]
    lines += table(header, rows)
    if (runs_dir / name / "shift_summary.png").is_file():
        lines += [f"![Shift test over seeds](runs/{name}/shift_summary.png)", ""]
    return lines


def vae_section(name: str, m: dict[str, Any], runs_dir: Path) -> list[str]:
    """The VAE's run: its test ELBO and samples."""
    lines = [f"## `{name}`: the VAE", ""]
    rows = [
        [
            f"{m['test_elbo_nats_per_image']:.2f}",
            m["epochs"],
            f"{statistics.median(m['seconds']):.2f}",
            f"{m['wall_minutes']:.1f}",
        ]
    ]
    lines += table(["test ELBO (nats/image)", "epochs", "s/epoch (median)", "minutes"], rows)
    lines += [f"Binarisation: {m['binarisation']}.", ""]
    if (runs_dir / name / "samples.png").is_file():
        lines += [f"![VAE samples](runs/{name}/samples.png)", ""]
    return lines


def beyond_noise(m: dict[str, Any]) -> str:
    """On how many shift-test sets the Bayesian NLL is lower beyond the noise, of how many."""
    diffs = m.get("shift_test_nll_difference") or {}
    if not diffs:
        return "-"
    return f"{sum(d['high'] < 0 for d in diffs.values())} of {len(diffs)}"


def validation_section(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Runs scored on held-out training images: one row each, to compare their flags."""
    names = {str(Path(m["config"]["out"])): name for name, m in runs.items()}
    rows = [
        [
            f"`{name}`",
            f"`{describe_flags(m['config'], names)}`",
            pct(m["test_accuracy"]),
            f"{m['test_nll']:.4f}",
            pct(m["test_ece"]),
            beyond_noise(m),
            f"{training_minutes(m):.1f}",
        ]
        for name, m in runs.items()
    ]
    header = ["run", "flags", "accuracy", "NLL", "ECE", "NLL lower than the plain net's"]
    header.append("training (min)")
    evaluated = sorted({m["evaluated_on"] for m in runs.values()})
    lines = [
        "Scored on " + "; ".join(evaluated) + " (`--validation`), never on the test set: "
        "these runs chose the flags. The last column counts the shift-test sets (the held-out "
        "images, clean and corrupted) on which the Bayesian net's NLL is lower than the plain "
        "LeNet's beyond the noise (paired bootstrap, 95%).",
        "",
    ]
    return lines + table(header, rows)


def page_of(m: dict[str, Any]) -> str:
    """Which page a run's JSON belongs on."""
    if "test_elbo_nats_per_image" in m:
        return "vae"
    if "seeds" in m or str(m.get("evaluated_on", "test")) == "test":
        return "bnn-lenet" if "seeds" in m or m["config"]["arch"] == "lenet" else "bnn-mlp"
    return "lenet-validation"


def intro(title: str) -> list[str]:
    """A page's title and where its numbers come from."""
    return [
        f"# {title}",
        "",
        "Generated by `docs/build_results.py` from the JSON the runs wrote (under "
        "`docs/results/runs/`); the scripts, flags and versions are those each section names. "
        "Times depend on the machine and its load.",
        "",
    ]


def model_page(key: str, runs: dict[str, dict[str, Any]], runs_dir: Path) -> str:
    """The page of one model: the runs over seeds, each run, the shift test over seeds."""
    lines = intro(PAGES[key])
    if key == "lenet-validation":
        lines += validation_section(runs)
        return "\n".join(lines).rstrip() + "\n"
    trained = trained_runs(runs)
    if key != "vae":
        lines += seeds_section(trained, PAGES[key])
    summaries = [(name, m) for name, m in runs.items() if "seeds" in m]
    summaries.sort(key=lambda summary: len(summary[1]["seeds"]), reverse=True)
    for name, m in summaries:
        lines += shift_summary_section(name, m, runs_dir)
    for name, m in trained.items():
        lines += vae_section(name, m, runs_dir) if key == "vae" else bnn_section(name, m, runs_dir)
    return "\n".join(lines).rstrip() + "\n"


def overview(by_page: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The index page: each model's headline figures and a link to its page."""
    lines = intro("Results of the reference runs")
    rows = []
    for key, runs in by_page.items():
        scored = [m for m in runs.values() if "test_accuracy" in m]
        if key == "vae":
            for m in runs.values():
                headline = f"test ELBO {m['test_elbo_nats_per_image']:.2f} nats/image"
                rows.append([f"[{PAGES[key]}]({key}.md)", 1, headline])
        elif scored:
            where = "held-out training images" if key == "lenet-validation" else "test set"
            groups = [] if key == "lenet-validation" else seed_groups(runs)
            for found in [list(group.values()) for group in groups] or [scored]:
                accuracy, nll, ece = mean_scores(found)
                headline = f"mean accuracy {pct(accuracy)}, NLL {nll:.4f}, ECE {pct(ece)} ({where})"
                if groups:
                    headline += f", over seeds: `{describe_flags(found[0]['config'])}`"
                rows.append([f"[{PAGES[key]}]({key}.md)", len(found), headline])
    lines += table(["page", "runs", "headline (mean over the runs)"], rows)
    lines += ["```{toctree}", ":hidden:", "", *by_page, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def pages(runs: dict[str, dict[str, Any]], runs_dir: Path) -> dict[str, str]:
    """Every results page, in Markdown, by file name."""
    by_page: dict[str, dict[str, dict[str, Any]]] = {key: {} for key in PAGES}
    for name, m in runs.items():
        by_page[page_of(m)][name] = m
    by_page = {key: found for key, found in by_page.items() if found}
    written = {f"{key}.md": model_page(key, found, runs_dir) for key, found in by_page.items()}
    return {"index.md": overview(by_page), **written}


def add(run_dir: Path, name: str, runs: Path) -> None:
    """Copy a run's JSON and plots into ``runs / name`` (a held-out run's JSON alone)."""
    target = runs / name
    target.mkdir(parents=True, exist_ok=True)
    kept = KEPT
    if (run_dir / "metrics.json").is_file():
        metrics = json.loads((run_dir / "metrics.json").read_text())
        if metrics.get("evaluated_on", "test") != "test":  # its page shows no plots
            kept = ("metrics.json",)
    for file in kept:
        if (run_dir / file).is_file():
            shutil.copy2(run_dir / file, target / file)


def main(argv: list[str] | None = None) -> None:
    """Copy the runs given with ``--add``, then write the pages."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--add", nargs=2, metavar=("RUN_DIR", "NAME"), action="append")
    args = parser.parse_args(argv)
    for run_dir, name in args.add or []:
        add(Path(run_dir), name, args.runs)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in pages(load(args.runs), args.runs).items():
        (args.out_dir / name).write_text(text)


if __name__ == "__main__":
    main()
