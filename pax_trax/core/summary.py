"""`Module.summary()`: a table of submodules with parameter shapes and counts."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["summary", "count_parameters"]


def count_parameters(module) -> int:
    """The number of trainable scalars in `module` (Trax's "trainable weights").

    >>> import pax_trax.nn as nn, numpy as np
    >>> count_parameters(nn.Dense(2).init(np.zeros((1, 3))))
    8
    """
    total = 0
    for m in module.modules():
        d = m.__dict__
        for n in m._pt_params:
            total += _size(d[n])
    return total


def _leaves(tree):
    import jax

    return [x for x in jax.tree_util.tree_leaves(tree) if hasattr(x, "shape")]


def _size(tree):
    return sum(math.prod(np.shape(x)) for x in _leaves(tree))


def _describe(fields, d):
    parts = []
    for n in fields:
        leaves = _leaves(d[n])
        if len(leaves) == 1:
            x = leaves[0]
            parts.append(f"{n}{tuple(x.shape)} {x.dtype}")
        elif leaves:
            parts.append(f"{n}: {len(leaves)} arrays")
    return ", ".join(parts)


def summary(module) -> str:
    rows = []

    def visit(m, label, depth):
        d = m.__dict__
        n_params = sum(_size(d[n]) for n in m._pt_params)
        n_state = sum(_size(d[n]) for n in m._pt_states)
        rows.append(
            ("  " * depth + label, _describe(m._pt_params, d), _describe(m._pt_states, d),
             n_params, n_state)
        )
        for sub_label, sub in m.named_sublayers():
            visit(sub, f"{sub_label.split('.')[-1] if '.' in sub_label else sub_label}: {sub.name}"
                  if sub_label != sub.name else sub.name, depth + 1)

    visit(module, module.name, 0)
    headers = ("module", "parameters", "state", "#params", "#state")
    table = [headers] + [(a, b, c, f"{p:,}", f"{s:,}") for a, b, c, p, s in rows]
    widths = [max(len(r[i]) for r in table) for i in range(5)]

    def fmt(r):
        cells = [r[i].ljust(widths[i]) if i < 3 else r[i].rjust(widths[i]) for i in range(5)]
        return "  ".join(cells).rstrip()

    lines = [fmt(table[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in table[1:]]
    total = sum(r[3] for r in rows)
    total_state = sum(r[4] for r in rows)
    lines.append(f"Total trainable parameters: {total:,}")
    lines.append(f"Total state values: {total_state:,}")
    return "\n".join(lines)
