"""Batch-dimension tracking for the PyTorch lowering (so MACs stay per sample).

Pipeline position: model → **CG** (tracing) → features → predictor → ranking/search.

CG shapes are batch-first and :mod:`cgpredict.counting` divides by ``shape[0]``. Networks do not
always keep the batch first (``nn.MultiheadAttention`` works on ``(L, N, E)`` and ``(L·N, E)``
views), so the lowering follows the batch of the first input through every op. Its location is
the product of the row-major index extents outside of it (``bpre``: 1 for ``(N, C, H, W)``, ``L``
for ``(L, N, E)`` and for ``(L·N, E)``); plain reshapes keep it, permutes and dim
insertions/removals move it. :func:`canonical_shape` writes a shape with the batch moved in front.
"""

from __future__ import annotations

import math
from typing import Any

from cgpredict.converters._torch_records import Ref


def norm_dim(dim: int, rank: int) -> int:
    """A non-negative dim index (``-1`` → ``rank - 1``)."""
    dim = int(dim)
    return dim + rank if dim < 0 else dim


def _int_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)]


def locate(shape: tuple[int, ...], bpre: int | None, batch: int) -> tuple[int, int] | None:
    """The dim holding the batch and the extent outside it within that dim, or ``None``.

    A dim of its own (size == batch, right after extent ``bpre``) is preferred; otherwise the dim
    the batch is merged into (``(L·N, E)``).
    """
    if bpre is None:
        return None
    acc = 1
    for j, size in enumerate(shape):  # a dim of its own
        if acc == bpre and size == batch:
            return j, 1
        acc *= size
    acc = 1
    for j, size in enumerate(shape):  # the outer factor of a dim (e.g. N of N·L)
        if acc == bpre and size > 0 and size % batch == 0:
            return j, 1
        acc *= size
    acc = 1
    for j, size in enumerate(shape):
        nxt = acc * size
        if acc <= bpre and bpre % acc == 0 and nxt % (bpre * batch) == 0 and size > 0:
            return j, bpre // acc
        acc = nxt
    return None


def track_batch(key: str, name: str, args: dict[str, Any], x: Ref, bpre: int | None, out: Ref,
                 batch: int) -> int | None:
    """Batch location (see :class:`_Val`) of ``out`` given that of the op's main input ``x``."""
    if bpre is None:
        return None
    ins, outs = tuple(x.shape), tuple(out.shape)
    n = name.rstrip("_") if not name.endswith("__") else name
    if key == "reshape" and n not in ("transpose", "swapaxes", "swapdims", "t", "T", "mT", "permute",
                                      "movedim", "moveaxis", "unsqueeze", "squeeze", "expand",
                                      "expand_as", "broadcast_to"):
        return bpre  # view / reshape / flatten / unflatten keep the row-major order
    loc = locate(ins, bpre, batch)
    if loc is None:
        return None
    b, inner = loc
    try:
        j = _batch_dim_after(key, n, args, ins, outs, b)
    except (ValueError, IndexError, TypeError):
        return None
    if j is None or not 0 <= j < len(outs):
        return None
    return math.prod(outs[:j]) * inner


def _batch_dim_after(key: str, n: str, args: dict[str, Any], ins: tuple[int, ...], outs: tuple[int, ...],
                     b: int) -> int | None:
    """Index in the output of input dim ``b`` (``None`` when the op removes it)."""
    if n in ("transpose", "swapaxes", "swapdims"):
        d0, d1 = norm_dim(args.get("dim0", 0), len(ins)), norm_dim(args.get("dim1", 1), len(ins))
        return d1 if b == d0 else d0 if b == d1 else b
    if n == "t" and len(ins) == 2:
        return 1 - b
    if n == "T":
        return len(ins) - 1 - b
    if n == "mT":
        r = len(ins)
        return r - 1 if b == r - 2 else r - 2 if b == r - 1 else b
    if n == "permute":
        dims = args.get("dims")
        if dims is None:
            dims = [args[k] for k in sorted((k for k in args if k.startswith("arg") and k != "arg0"),
                                            key=lambda k: int(k[3:]))]
            if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
                dims = list(dims[0])
        perm = [norm_dim(d, len(ins)) for d in _int_list(dims)]
        return perm.index(b)
    if n in ("movedim", "moveaxis"):
        src = [norm_dim(d, len(ins)) for d in _int_list(args.get("source"))]
        dst = [norm_dim(d, len(ins)) for d in _int_list(args.get("destination"))]
        order: list[int | None] = [None] * len(ins)
        for sd, dd in zip(src, dst):
            order[dd] = sd
        rest = iter(d for d in range(len(ins)) if d not in src)
        perm = [o if o is not None else next(rest) for o in order]
        return perm.index(b)
    if n == "unsqueeze":
        d = norm_dim(args.get("dim", 0), len(outs))
        return b + 1 if d <= b else b
    if n == "squeeze":
        dims = args.get("dim")
        cand = range(len(ins)) if dims is None else [norm_dim(d, len(ins)) for d in _int_list(dims)]
        removed = {d for d in cand if ins[d] == 1}
        return None if b in removed else b - sum(1 for d in removed if d < b)
    if key == "select" or n == "unbind":
        d = norm_dim(args.get("dim", 0), len(ins))
        return None if d == b else b - 1 if d < b else b
    if key == "stack":
        d = norm_dim(args.get("dim", 0), len(outs))
        return b + 1 if d <= b else b
    if key == "im2col":  # (N, C, H, W) ↔ (N, C·k·k, L): the batch stays in front
        return b if b == 0 else None
    if key == "embedding":  # indices (…, N, …) → (…, N, …, D)
        return b
    if key == "rnn":  # output (N, T, H) / (T, N, H) keeps the input's layout
        return b
    if key in ("mean", "sum", "amax") and len(outs) < len(ins):
        dim = args.get("dim")
        dims = set(range(len(ins))) if dim is None or dim == [] else {norm_dim(d, len(ins)) for d in _int_list(dim)}
        return None if b in dims else b - sum(1 for d in dims if d < b)
    return b + len(outs) - len(ins)


def fallback_batch_first(shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    """A shape whose batch location was lost (e.g. after an op the tracker does not know).

    Counting divides by ``shape[0]`` (:mod:`cgpredict.counting`), so a shape that leads with a
    folded ``B·N`` would divide per-sample MACs by ``N``. The batch is taken to lead its first dim:
    ``(B·N, …)`` → ``(B, N, …)`` (for batch 1: ``(N, …)`` → ``(1, N, …)``); a first dim that is the
    batch, or not a multiple of it, is left as it is.
    """
    shape = tuple(shape)
    if not shape or shape[0] == batch or batch <= 0 or shape[0] % batch:
        return shape
    return (batch, shape[0] // batch) + shape[1:]


def canonical_shape(shape: tuple[int, ...], bpre: int | None, batch: int) -> tuple[int, ...]:
    """``shape`` rewritten batch-first: the batch (a dim of its own or merged into one) leads.

    Batch-first shapes are returned unchanged; ``(L, N, E)`` → ``(N, L, E)``; ``(L·N, E)`` →
    ``(N, L, E)``; unknown locations go through :func:`fallback_batch_first`.
    """
    shape = tuple(shape)
    loc = locate(shape, bpre, batch)
    if loc is None:
        return fallback_batch_first(shape, batch)
    j, _ = loc
    size = shape[j]
    if j == 0 and size == batch:
        return shape
    if size == batch:
        return (batch,) + shape[:j] + shape[j + 1:]
    return (batch,) + shape[:j] + (size // batch,) + shape[j + 1:]
