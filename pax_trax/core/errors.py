"""Errors that say where in a model something went wrong."""

from __future__ import annotations

import functools

__all__ = ["LayerError", "FrozenModuleError", "StateChangeError", "in_sublayer"]


class LayerError(Exception):
    """An error raised inside a layer, carrying the layer's path in the model.

    The path reads from the outermost module down, e.g. ``Serial[2]/Dense_2``
    means "the third sublayer (index 2) of the top Serial, a Dense_2". The
    original exception is kept as ``__cause__``.
    """

    def __init__(self, path, message):
        super().__init__()
        self.path = list(path)
        self.message = message

    def __str__(self):
        return f"in {'/'.join(self.path)}: {self.message}"


class FrozenModuleError(AttributeError):
    """Raised when code assigns to a field of a constructed module."""


class StateChangeError(RuntimeError):
    """Raised when a plain call would have to drop a module's updated state."""


class in_sublayer:
    """Context manager that adds a path segment to errors raised inside it.

    `label` is the parent's segment (e.g. ``Serial[2]``) and `child_name` the
    name of the sublayer being run, used when the error did not come from a
    layer (so it has no path yet).
    """

    __slots__ = ("label", "child_name")

    def __init__(self, label, child_name):
        self.label = label
        self.child_name = child_name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or not isinstance(exc, Exception):
            return False
        if isinstance(exc, (FrozenModuleError, StateChangeError)):
            return False
        if isinstance(exc, LayerError):
            exc.path.insert(0, self.label)
            return False
        raise make_layer_error([self.label, self.child_name], exc) from exc


def _describe(exc):
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def at_top(module_name, exc):
    """Wraps an exception raised by a top-level module call (no parent)."""
    if isinstance(exc, LayerError):
        return exc
    return make_layer_error([module_name], exc)


# Built-in exception types whose constructors take a plain message; a
# LayerError wrapping one of them is also an instance of it, so that
# `except TypeError` still catches a wrong dtype deep inside a model.
_WRAPPABLE = (ValueError, TypeError, IndexError, KeyError, AssertionError,
              NotImplementedError, ArithmeticError, RuntimeError)


@functools.lru_cache(maxsize=None)
def _error_class(base):
    if base is None:
        return LayerError
    return type("LayerError", (LayerError, base), {"__module__": __name__})


def make_layer_error(path, exc):
    """A LayerError for `exc` at `path`, also an instance of exc's built-in type."""
    base = next((c for c in type(exc).__mro__ if c in _WRAPPABLE), None)
    return _error_class(base)(path, _describe(exc))
