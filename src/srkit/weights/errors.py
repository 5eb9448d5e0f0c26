"""Errors raised while reading weight files."""

from __future__ import annotations


class WeightsError(ValueError):
    """A weight file cannot be loaded: unknown architecture, tensors that don't fit, bad file."""
