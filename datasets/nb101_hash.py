"""The NAS-Bench-101 module hash: an isomorphism-invariant identity of a (pruned) NB-101 cell.

Pipeline position: **model** (family tables: which networks are the same) → CG → features →
predictor → ranking/search.

NAS-Bench-101 (Ying et al., ICML 2019) keys every cell by a fingerprint that is invariant to the
numbering of its vertices, so that isomorphic cells share one entry. This module reimplements that
fingerprint, which lets the 500-net NASLib table (unpruned 7×7 matrices) be matched against the
30,001-net table keyed by the benchmark's hash (``nb101_30k/nasbench101_30k.csv``, column
``nb101_hash``):

1. prune the cell to the vertices on an input→output path (as the benchmark does before training);
2. label every vertex with ``(out-degree, in-degree, op label)``, the op labels being ``-1`` for the
   input, ``-2`` for the output and the position of the op in the benchmark's list
   ``(conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3)`` for interior vertices, and hash each label
   with MD5 (of its Python tuple text, e.g. ``"(2, 0, -1)"``);
3. refine ``n`` times (``n`` = number of vertices): a vertex's new hash is the MD5 of its sorted
   predecessor hashes, ``|``, its sorted successor hashes, ``|``, and its own hash (hex strings
   concatenated);
4. the fingerprint is the MD5 of the text of the sorted list of vertex hashes.

``tests/test_tables.py`` checks the fingerprint against the table's ``nb101_hash`` column on a
seeded sample of rows (exact, all 32 hex digits).

Example:
    >>> from cgpredict.datasets.nb101_hash import nb101_hash
    >>> nb101_hash((0, 1, 0, 0, 0, 1))   # input → output (2×2 matrix + ops), a row of nb101_30k
    '043721b9c7fe8c5fad811d47d83132ec'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cgpredict.datasets import nasbench101 as nb101

#: The benchmark's op label of each interior op code of the arch encoding
#: (``2=maxpool3x3, 3=conv1x1-bn-relu, 4=conv3x3-bn-relu``), plus ``-1`` input and ``-2`` output.
OP_LABEL: dict[int, int] = {
    nb101.INPUT: -1,
    nb101.OUTPUT: -2,
    nb101.CONV3X3: 0,
    nb101.CONV1X1: 1,
    nb101.MAXPOOL3X3: 2,
}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - a fingerprint, not security


def hash_cell(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """The NB-101 fingerprint of a cell given as an adjacency matrix and NB-101 op labels.

    ``matrix`` must already be pruned (the benchmark hashes pruned cells); ``labels`` are the
    benchmark's labels (:data:`OP_LABEL` values), one per vertex.

    Raises:
        ValueError: the matrix is not square or does not match the number of labels.
    """
    n = len(labels)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        raise ValueError(f"nb101_hash: a {len(matrix)}-row matrix for {n} vertex labels (must be {n}×{n})")
    out_degree = [int(sum(int(v) for v in matrix[i])) for i in range(n)]
    in_degree = [int(sum(int(matrix[i][j]) for i in range(n))) for j in range(n)]
    hashes = [_md5(str((out_degree[v], in_degree[v], int(labels[v])))) for v in range(n)]
    preds = [[u for u in range(n) if matrix[u][v]] for v in range(n)]
    succs = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5(
                "".join(sorted(hashes[u] for u in preds[v]))
                + "|"
                + "".join(sorted(hashes[w] for w in succs[v]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def nb101_hash(arch: Sequence[int] | str) -> str:
    """The NB-101 module hash (32 hex digits) of an arch of :mod:`cgpredict.datasets.nasbench101`.

    The cell is validated and pruned first, so an unpruned 7×7 cell and its pruned form share the
    hash, as do isomorphic cells.

    Raises:
        ValueError: a malformed arch (naming the family and the arch).
    """
    flat = nb101.parse_arch(arch if isinstance(arch, str) else nb101.format_arch(tuple(arch)))
    matrix, ops = nb101.prune(*nb101.split_arch(flat))
    return hash_cell(matrix, [OP_LABEL[o] for o in ops])
