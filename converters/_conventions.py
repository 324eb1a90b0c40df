"""Node conventions shared by the PyTorch and ONNX converters (so both write the same CG).

Pipeline position: model → **CG** (helpers of :mod:`cgpredict.converters`) → features → predictor.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG


def split_attrs(dim: int, index: int, start: int) -> dict[str, int]:
    """Attributes of the ``index``-th output of a split along ``dim`` starting at element ``start``.

    ``index`` is the output's position (the convention of ``split``/``chunk``/``unbind`` and ONNX
    ``Split``); ``start`` (its offset along ``dim``, which slices record as their ``index``) is
    written only where it differs from ``index`` (e.g. the second half of ``chunk(2)``), so the piece
    is known whatever the source called it.
    """
    attrs = {"dim": dim, "index": index}
    if start != index:
        attrs["start"] = start
    return attrs


def einsum_is_matmul(equation: object) -> bool:
    """Whether a two-operand einsum contracts only the last index of its first operand.

    Such an einsum (``bhqd,bhkd->bhqk``, ``bij,bjk->bik``) is a batched matmul and becomes a
    ``matmul`` node (MACs = output elements × the contracted size) from torch and ONNX alike.
    """
    if not isinstance(equation, str) or "->" not in equation or "." in equation:
        return False
    lhs, rhs = equation.replace(" ", "").split("->")
    parts = lhs.split(",")
    if len(parts) != 2 or not parts[0]:
        return False
    a, b = parts
    return (set(a) & set(b)) - set(rhs) == {a[-1]} and not (set(a) ^ set(b)) - set(rhs) - {a[-1]}


class UncountedOpWarning(RuntimeWarning):
    """Some ops became ``unknown`` nodes whose MACs are not counted (0): totals may be too low.

    A ``RuntimeWarning`` (not a ``UserWarning``): the conversion itself succeeded.
    """


def warn_uncounted(cg: CG, label: str, stacklevel: int = 3) -> None:
    """One :class:`UncountedOpWarning` per op type of ``cg``'s uncounted ``unknown`` nodes.

    An ``unknown`` node is uncounted when no converter rule gave it MACs (``attrs["macs"]``, set
    for recurrent layers and table lookups). Each warning names the op, how many nodes carry it and
    their module paths (ONNX node names).
    """
    from cgpredict.counting import counted_unknown_macs

    where: dict[str, list[str]] = {}
    for node in cg.nodes:
        if node.op == "unknown" and counted_unknown_macs(node) is None:
            where.setdefault(node.source_op or "?", []).append(node.name or "<root>")
    for op, paths in sorted(where.items()):
        shown = ", ".join(repr(p) for p in list(dict.fromkeys(paths))[:5])
        more = f" and {len(set(paths)) - 5} more" if len(set(paths)) > 5 else ""
        warnings.warn(
            f"{label}: op {op!r} ({len(paths)} node{'s' if len(paths) > 1 else ''}, at {shown}{more}) "
            "became an 'unknown' node with 0 MACs: its compute is not counted",
            UncountedOpWarning, stacklevel=stacklevel,
        )
