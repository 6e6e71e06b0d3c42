"""The implementation of :mod:`pyro_logits.lint` (standard library only)."""
