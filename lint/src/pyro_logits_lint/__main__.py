"""``python -m pyro_logits_lint PATH...``: the linter's command line."""

import sys

from pyro_logits_lint.api import main

sys.exit(main(prog="python -m pyro_logits_lint"))
