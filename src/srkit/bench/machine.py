"""Moved to :mod:`srkit.common.machine`; this name stays only for ``srkit.train.trainer`` and
``tools/ship_model.py`` until they import it from there, then goes."""

from srkit.common.machine import cpu_name, machine_summary

__all__ = ["cpu_name", "machine_summary"]
