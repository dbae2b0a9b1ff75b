"""Supervised learning, as in ``trax.supervised``: learning rate schedules."""

from pax_trax.supervised import lr_schedules

__all__ = ["lr_schedules"]
