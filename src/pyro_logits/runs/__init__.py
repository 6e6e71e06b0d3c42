"""What the reference runs under ``models/`` share, for scripts of your own too.

- :mod:`~pyro_logits.runs.arguments`: argparse types; a bad value is a usage error (exit 2).
- :mod:`~pyro_logits.runs.directory`: the output directory, locked by one run, checked, with an
  earlier run never replaced unless asked.
- :func:`atomic_write`: a file written all at once, never half; :func:`write_checkpoint` and
  :func:`read_checkpoint`: a torch checkpoint behind a SHA-256 digest checked on load.
- :mod:`~pyro_logits.runs.environment`: versions, device sync, progress bars and start-up
  checks of what the run needs at its end.
- :mod:`~pyro_logits.runs.state`: checks of a checkpoint's content, entry by entry.
"""

from pyro_logits._atomic import atomic_write
from pyro_logits._checkpoint import read_checkpoint, write_checkpoint
from pyro_logits.runs.arguments import (
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    unit_interval,
)
from pyro_logits.runs.directory import (
    RunLock,
    claim_run_dir,
    exit_in_one_line,
    prepare_run_dir,
    remove_partial_files,
    run_dir_error,
)
from pyro_logits.runs.environment import progress_bar, require_modules, synchronize, versions

__all__ = [
    "RunLock",
    "atomic_write",
    "claim_run_dir",
    "exit_in_one_line",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "prepare_run_dir",
    "progress_bar",
    "read_checkpoint",
    "remove_partial_files",
    "require_modules",
    "run_dir_error",
    "synchronize",
    "unit_interval",
    "versions",
    "write_checkpoint",
]
