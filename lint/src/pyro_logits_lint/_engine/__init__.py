"""The analysis behind :mod:`pyro_logits_lint` (standard library only)."""
