"""The version of the linter's distribution, ``pyro-logits-lint``."""

__version__ = "0.1.0"
