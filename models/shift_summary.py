"""The shift test of several ``models/bnn_mnist.py`` runs that differ only in ``--seed``.

One run compares one Bayesian network with one plain network, and under some corruptions the
plain network's NLL depends on its initial weights by a factor of 3 or more: a single run can
make either network look better. This script reads the ``metrics.json`` of runs made with the
same flags and different seeds and gives, for each corruption and network, the NLL's mean,
minimum and maximum over the seeds, the mean accuracy, and in how many seeds the Bayesian
network had the lower NLL: a table, ``shift_summary.json`` and ``shift_summary.png``. Runs that
saved the paired NLL difference of the two networks with its 95% interval over the test images
(``shift_test_nll_difference``) also say in how many seeds each network was lower beyond the
test set's noise (the interval clear of 0) and in how many the test set cannot tell.

Run: ``python models/shift_summary.py RUN_DIR RUN_DIR [...] [--out DIR] [--overwrite]``, e.g.
after ``python models/bnn_mnist.py --arch lenet --seed S --out runs/lenet_sS`` for S = 0, 1, 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bnn_report import plot_shift

from pyro_logits.scripts import atomic_write, prepare_run_dir

OUTPUTS = ("shift_summary.json", "shift_summary.png")
# Flags that do not change a run's shift test; every other flag must agree, the seed differ.
FREE_FLAGS = frozenset(
    {"seed", "out", "data_dir", "device", "threads", "eval_every", "num_samples"}
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--out`` is checked before any run is read."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="output directories of bnn_mnist.py")
    parser.add_argument("--out", type=Path, default=Path("runs/shift_summary"))
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier summary")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error(f"expected at least two run directories (seeds) but got {len(args.runs)}")
    try:
        prepare_run_dir(args.out, OUTPUTS, overwrite=args.overwrite, can_resume=False)
    except ValueError as error:
        parser.error(str(error))
    return args


def _comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    """What must agree between runs: the flags but the free ones, and the plain network."""
    flags = {k: v for k, v in metrics["config"].items() if k not in FREE_FLAGS}
    return {**flags, "baseline_network": metrics.get("baseline_network")}


def load_runs(dirs: list[Path]) -> list[dict[str, Any]]:
    """Each run's ``metrics.json``, checked to hold a shift test and to differ only in the seed.

    Raises
    ------
    ValueError
        A ``metrics.json`` is missing or has no shift test, two runs share a seed, or the
        runs differ in a flag outside :data:`FREE_FLAGS` or in the plain
        network they were compared with (``baseline_network``).
    """
    runs = []
    for run in dirs:
        path = run / "metrics.json"
        if not path.is_file():
            raise ValueError(
                f"Expected {path}, written by models/bnn_mnist.py when a run ends, but it is "
                "missing; finish that run (--resume) or leave it out."
            )
        metrics = json.loads(path.read_text())
        if "shift_test" not in metrics:
            raise ValueError(
                f"Expected a shift test in {path} but it has none (a run from before the shift "
                "test); run it again with the current script or leave it out."
            )
        runs.append(metrics)
    seeds = [m["config"]["seed"] for m in runs]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(
            f"Expected runs with different seeds but seed(s) {repeated} appear more than once "
            f"(seeds {seeds}); leave out the repeats."
        )
    first = _comparable(runs[0])
    for run, metrics in zip(dirs[1:], runs[1:], strict=True):
        this = _comparable(metrics)
        differ = {
            k: (first.get(k), this.get(k))
            for k in sorted(first.keys() | this.keys())
            if first.get(k) != this.get(k)
        }
        if differ:
            raise ValueError(
                f"Expected runs that differ only in --seed but {run} differs from {dirs[0]} in "
                f"{differ} (first run, this run); compare runs made with the same flags."
            )
    return runs


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per corruption and network: NLL, accuracy and ECE over the runs, and the Bayesian wins."""
    names = list(runs[0]["shift_test"])
    nets = [n for n in ("bnn", "plain") if all(n in m["shift_test"][names[0]] for m in runs)]
    table: dict[str, Any] = {}
    for name in names:
        row: dict[str, Any] = {
            net: {
                key: _spread([m["shift_test"][name][net][key] for m in runs])
                for key in ("nll", "accuracy", "ece")
            }
            for net in nets
        }
        if "plain" in nets:
            row["bnn_lower_nll_in"] = sum(
                m["shift_test"][name]["bnn"]["nll"] < m["shift_test"][name]["plain"]["nll"]
                for m in runs
            )
            intervals = [m.get("shift_test_nll_difference", {}).get(name) for m in runs]
            if all(intervals):
                row["nll_difference"] = {
                    "intervals": intervals,
                    "bnn_lower_beyond_noise_in": sum(d["high"] < 0 for d in intervals),
                    "plain_lower_beyond_noise_in": sum(d["low"] > 0 for d in intervals),
                    "within_noise_in": sum(d["low"] <= 0 <= d["high"] for d in intervals),
                }
        table[name] = row
    return {
        "seeds": [m["config"]["seed"] for m in runs],
        "flags": {k: v for k, v in runs[0]["config"].items() if k not in FREE_FLAGS},
        "shift_test_samples": runs[0].get("shift_test_samples"),
        "shift_test": table,
    }


def _print(summary: dict[str, Any]) -> None:
    table = summary["shift_test"]
    nets = [n for n in ("bnn", "plain") if n in next(iter(table.values()))]
    count = len(summary["seeds"])
    print(
        f"shift test over seeds {summary['seeds']}: NLL mean [min, max], mean accuracy "
        f"({summary['shift_test_samples']} posterior samples)"
    )
    for name, row in table.items():
        cells = []
        for net in nets:
            nll, acc = row[net]["nll"], row[net]["accuracy"]
            cells.append(
                f"{net} {nll['mean']:.4f} [{nll['min']:.4f}, {nll['max']:.4f}] "
                f"{100 * acc['mean']:6.2f}%"
            )
        if "bnn_lower_nll_in" in row:
            cells.append(f"Bayesian lower in {row['bnn_lower_nll_in']} of {count}")
        if "nll_difference" in row:
            diff = row["nll_difference"]
            cells.append(
                f"beyond the test set's noise: Bayesian {diff['bnn_lower_beyond_noise_in']}, "
                f"plain {diff['plain_lower_beyond_noise_in']}, neither {diff['within_noise_in']}"
            )
        print(f"  {name:14} " + "   ".join(cells))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Read the runs, write the summary's JSON and plot, print its table; return the summary."""
    args = parse_args(argv)
    try:
        runs = load_runs(args.runs)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    summary = summarise(runs)
    summary["runs"] = [str(run) for run in args.runs]
    with atomic_write(args.out / "shift_summary.json") as f:
        f.write((json.dumps(summary, indent=2) + "\n").encode())
    plot_shift(
        summary["shift_test"],
        args.out / "shift_summary.png",
        title=f"Shift test, mean and min-max over seeds {summary['seeds']}",
    )
    _print(summary)
    return summary


if __name__ == "__main__":
    main()
