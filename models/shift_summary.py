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

A seed whose score is not finite (NaN, or an infinite NLL) is left out of that score's mean,
minimum and maximum and listed in its ``not_finite_seeds``, in the table and the JSON; an
interval with a NaN end counts in ``nan_in``, not in the three columns above. The JSON is strict:
every NaN or infinite number in it is written as ``null``. A run the script cannot read (a
missing, unreadable or malformed ``metrics.json``, runs that differ in a flag or in their
corruptions) stops it with one line on stderr that names the file, and exit status 2.

Run: ``python models/shift_summary.py RUN_DIR RUN_DIR [...] [--out DIR] [--overwrite]``, e.g.
after ``python models/bnn_mnist.py --arch lenet --seed S --out runs/lenet_sS`` for S = 0, 1, 2.
"""

from __future__ import annotations

import argparse
import json
import math
import reprlib
import statistics
import sys
from pathlib import Path
from typing import Any

from pyro_logits.bnn.evaluation import complete_config
from pyro_logits.plots import plot_shift
from pyro_logits.runs import atomic_write, claim_run_dir, require_modules, run_dir_error

OUTPUTS = ("shift_summary.json", "shift_summary.png")
# Flags that do not change a run's shift test; every other flag must agree, the seed differ.
FREE_FLAGS = frozenset(
    {"seed", "out", "data_dir", "device", "threads", "eval_every", "num_samples", "samples_curve"}
)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="output directories of bnn_mnist.py")
    parser.add_argument("--out", type=Path, default=Path("runs/shift_summary"))
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier summary")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; no side effects."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error(f"expected at least two run directories (seeds) but got {len(args.runs)}")
    return args


def _comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    """What must agree between runs: the flags but the free ones, and the plain network."""
    config = complete_config(metrics["config"])  # flags added since a run: as it ran
    flags = {k: v for k, v in config.items() if k not in FREE_FLAGS}
    return {**flags, "baseline_network": metrics.get("baseline_network")}


_MISSING = object()
SCORES = ("nll", "accuracy", "ece")
INTERVAL = ("mean", "low", "high")


def _malformed(path: Path, keys: tuple[str, ...], what: str, value: Any) -> ValueError:
    """The error for ``metrics[keys[0]][keys[1]]...`` in ``path`` that is not ``what``."""
    where = keys[0] + "".join(f"[{key!r}]" for key in keys[1:]) if keys else "the top level"
    if value is _MISSING:
        got = "it is missing"
    else:
        got = f"got {type(value).__name__} {reprlib.repr(value)}"
    return ValueError(
        f"Expected {where} in {path} to be {what} but {got}; this is not a metrics.json as "
        "models/bnn_mnist.py writes it: run that seed again or leave it out."
    )


def _object(path: Path, parent: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``parent[keys[-1]]``, checked to be a non-empty JSON object."""
    value = parent.get(keys[-1], _MISSING)
    if not isinstance(value, dict) or not value:
        raise _malformed(path, keys, "a non-empty JSON object", value)
    return value


def _numbers(
    path: Path, parent: dict[str, Any], keys: tuple[str, ...], names: tuple[str, ...]
) -> None:
    """Check that ``parent[name]`` is a number or null for each name; null becomes NaN."""
    for name in names:
        value = parent.get(name, _MISSING)
        if value is None:
            parent[name] = math.nan
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise _malformed(path, (*keys, name), "a number or null", value)


def _read(path: Path) -> dict[str, Any]:
    """One run's ``metrics.json``, checked to hold what :func:`summarise` reads."""
    try:
        text = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise ValueError(
            f"Expected {path}, written by models/bnn_mnist.py when a run ends, but it is "
            "missing; finish that run (--resume) or leave it out."
        ) from None
    except OSError as error:
        raise ValueError(
            f"Expected to read {path} but could not ({error.strerror or error}); check its "
            "permissions or leave it out."
        ) from None
    try:
        metrics = json.loads(text)
    except (ValueError, RecursionError) as error:  # also UnicodeDecodeError, too deep nesting
        raise ValueError(
            f"Expected JSON in {path} but it does not parse ({error}); run that seed again or "
            "leave it out."
        ) from None
    if not isinstance(metrics, dict):
        raise _malformed(path, (), "a JSON object", metrics)
    if "shift_test" not in metrics:
        raise ValueError(
            f"Expected a shift test in {path} but it has none (a run from before the shift "
            "test); run it again with the current script or leave it out."
        )
    seed = _object(path, metrics, ("config",)).get("seed", _MISSING)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _malformed(path, ("config", "seed"), "an integer", seed)
    shift = _object(path, metrics, ("shift_test",))
    differences = metrics.get("shift_test_nll_difference", {})
    if not isinstance(differences, dict):
        raise _malformed(path, ("shift_test_nll_difference",), "a JSON object", differences)
    nets: list[str] = []  # those of the first corruption, expected in every other
    for name in shift:
        row = _object(path, shift, ("shift_test", name))
        nets = nets or ["bnn", *(["plain"] if "plain" in row else [])]
        for net in nets:
            scores = _object(path, row, ("shift_test", name, net))
            _numbers(path, scores, ("shift_test", name, net), SCORES)
        if name in differences:
            keys = ("shift_test_nll_difference", name)
            interval = _object(path, differences, keys)
            _numbers(path, interval, keys, INTERVAL)
            if interval["low"] > interval["high"]:
                raise _malformed(path, keys, "an interval with low <= high", interval)
    return metrics


def load_runs(dirs: list[Path]) -> list[dict[str, Any]]:
    """Each run's ``metrics.json``, checked to hold a shift test and to differ only in the seed.

    Scores and interval ends written as ``null`` are read as NaN.

    Raises
    ------
    ValueError
        A ``metrics.json`` is missing, unreadable, not JSON, has no shift test or lacks (or
        has of the wrong type) a value the summary reads, two runs share a seed, or the runs
        differ in a flag outside :data:`FREE_FLAGS`, in the plain network they were compared
        with (``baseline_network``) or in their corruptions. The message is one line that
        names the file.
    """
    runs = [_read(run / "metrics.json") for run in dirs]
    seeds = [m["config"]["seed"] for m in runs]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(
            f"Expected runs with different seeds but seed(s) {repeated} appear more than once "
            f"(seeds {seeds}); leave out the repeats."
        )
    first = _comparable(runs[0])
    names = list(runs[0]["shift_test"])
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
        lacks = [n for n in names if n not in metrics["shift_test"]]
        extra = [n for n in metrics["shift_test"] if n not in names]
        if lacks or extra:
            raise ValueError(
                f"Expected the corruptions of {dirs[0] / 'metrics.json'} in "
                f"{run / 'metrics.json'} but it lacks {lacks} and has {extra} besides; run "
                "that seed again with the current script or leave it out."
            )
    return runs


def _spread(values: list[float], seeds: list[int]) -> dict[str, Any]:
    """Mean, min and max over the finite values; the seeds whose value is NaN or infinite."""
    finite = [v for v in values if math.isfinite(v)]
    return {
        "mean": statistics.fmean(finite) if finite else math.nan,
        "min": min(finite, default=math.nan),
        "max": max(finite, default=math.nan),
        "values": values,
        "not_finite_seeds": [s for s, v in zip(seeds, values, strict=True) if not math.isfinite(v)],
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per corruption and network: NLL, accuracy and ECE over the runs, and the Bayesian wins."""
    seeds = [m["config"]["seed"] for m in runs]
    names = list(runs[0]["shift_test"])
    nets = [n for n in ("bnn", "plain") if all(n in m["shift_test"][names[0]] for m in runs)]
    table: dict[str, Any] = {}
    for name in names:
        row: dict[str, Any] = {
            net: {
                key: _spread([m["shift_test"][name][net][key] for m in runs], seeds)
                for key in SCORES
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
                    "nan_in": sum(math.isnan(d["low"]) or math.isnan(d["high"]) for d in intervals),
                }
        table[name] = row
    return {
        "seeds": seeds,
        "flags": {k: v for k, v in runs[0]["config"].items() if k not in FREE_FLAGS},
        "shift_test_samples": runs[0].get("shift_test_samples"),
        "shift_test": table,
    }


def _null_if_not_finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float in it replaced by ``None`` (JSON ``null``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _null_if_not_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_null_if_not_finite(v) for v in value]
    return value


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
                + (f", NaN {diff['nan_in']}" if diff["nan_in"] else "")
            )
        not_finite = [
            f"{net} {key} in seeds {row[net][key]['not_finite_seeds']}"
            for net in nets
            for key in SCORES
            if row[net][key]["not_finite_seeds"]
        ]
        if not_finite:
            cells.append("not finite (left out): " + ", ".join(not_finite))
        print(f"  {name:14} " + "   ".join(cells))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Read the runs, write the summary's JSON and plot, print its table; return the summary.

    The summary returned keeps NaN and infinite numbers; the JSON holds ``null`` in their place.
    A run that :func:`load_runs` refuses ends the script with its one-line message on stderr
    and exit status 2.
    """
    args = parse_args(argv)
    try:
        require_modules("matplotlib", why="for the summary's plot")
        lock = claim_run_dir(args.out, OUTPUTS, overwrite=args.overwrite, can_resume=False)
    except ModuleNotFoundError as error:
        raise SystemExit(str(error)) from None
    except ValueError as error:
        run_dir_error(build_parser(), error)
    with lock:
        return _summarise_into(args)


def _summarise_into(args: argparse.Namespace) -> dict[str, Any]:
    try:
        runs = load_runs(args.runs)
    except ValueError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    summary = summarise(runs)
    summary["runs"] = [str(run) for run in args.runs]
    text = json.dumps(_null_if_not_finite(summary), indent=2, allow_nan=False)
    with atomic_write(args.out / "shift_summary.json") as f:
        f.write((text + "\n").encode())
    plot_shift(
        summary["shift_test"],
        args.out / "shift_summary.png",
        title=f"Shift test, mean and min-max over seeds {summary['seeds']}",
    )
    _print(summary)
    return summary


if __name__ == "__main__":
    main()
