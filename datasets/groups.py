"""Labelled groups for multi-family training: CGs, labels and a group per CG.

Why one module over 400 lines: group specs, within-group targets, the balanced sampler and the leave-one-family-out splits are one contract for multi-family training.

Pipeline position: **model** (labelled families) → CG → features → **predictor training data**
(this module) → ranking/search.

A *group* is one labelled family/task/table, e.g. ``nasbench101/cifar10@nb101_30k`` or
``transbench101_micro/jigsaw`` (:class:`GroupSpec`). Accuracies of different groups are not
comparable (another dataset, another metric, another training budget), so a predictor trained on
several groups must only compare networks within a group. This module provides:

* :func:`load_groups` → :class:`LabelledGroups`: the CGs, raw labels and a group id per CG of a
  list of groups, optionally ``n_per_group`` seeded networks of each;
* within-group targets: :func:`zscore_within` (labels standardised in each group) and
  :func:`flops_targets_within` (GENNAPE's eq. 5, ``Z(A / (log10(GFLOPs+1)+1))``, fitted per group);
* :class:`BalancedGroupSampler`: batches whose groups are drawn uniformly, each group giving the
  same number of networks, so 30,001 NB-101 nets do not drown 725 NB-301 nets;
* :func:`lofo_splits` / :func:`protocol_splits`: leave-one-family-out splits. NB-201, the NATS-Bench
  size space and TransNAS-Bench-101 micro share the NB-201 cell vocabulary
  (:data:`NB201_CELL_FAMILIES`); the *strict* variant removes all three from training when any of
  them is held out.

Low-fidelity groups (a table with ``truth=False``, e.g. ``nasbench201/cifar10@nb201_12epoch``)
train on their low-fidelity label (:attr:`cgpredict.datasets.tables.TableFamily.low_fidelity_label`)
and are never a test group; holding a family out removes all its groups, low fidelity included.

Example:
    >>> from cgpredict.datasets.groups import load_groups, BalancedGroupSampler, lofo_splits
    >>> data = load_groups(["nasbench101/cifar10@nb101_30k", "nasbench301/cifar10"], n_per_group=500)
    >>> y = data.targets()                                  # z-scored within each group
    >>> for batch in BalancedGroupSampler(data.group, batch_size=64, seed=0):
    ...     pass                                            # indices; data.group[batch] says whose
    >>> split = lofo_splits(data.families, data.truth)[0]   # hold out nasbench101
    >>> train_idx, test_idx = split.indices(data.group)
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from cgpredict.datasets import registry

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG
    from cgpredict.models.transform import FlopsTransform

#: Families built from the NB-201 cell vocabulary (removed together in the strict LOFO variant).
NB201_CELL_FAMILIES: tuple[str, ...] = ("nasbench201", "nats_sss", "transbench101_micro")


# ------------------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class GroupSpec:
    """One labelled group: ``family[/task][@table]`` (task defaults to the family's first task).

    Example:
        >>> GroupSpec.parse("nasbench201/cifar100@nb201_200ep")
        GroupSpec(family='nasbench201', task='cifar100', table='nb201_200ep')
    """

    family: str
    task: str | None = None
    table: str | None = None

    @classmethod
    def parse(cls, text: str | GroupSpec) -> GroupSpec:
        """Parse ``family[/task][@table]``; the task is resolved (``None`` → the family's first).

        Raises:
            ValueError: empty parts, an unknown family or task (naming the text).
        """
        if isinstance(text, GroupSpec):
            spec = text
        else:
            body, at, table = str(text).strip().partition("@")
            family, slash, task = body.partition("/")
            if not family or (slash and not task) or (at and not table) or "@" in table or "/" in task:
                raise ValueError(f"group {text!r}: expected family[/task][@table], e.g. 'nasbench201/cifar10@nb201_200ep'")
            spec = cls(family, task or None, table or None)
        try:
            task = registry.check_task(spec.family, spec.task)
        except ValueError as exc:
            raise ValueError(f"group {text!r}: {exc}") from None
        return cls(spec.family, task, spec.table)

    @property
    def name(self) -> str:
        """``family/task`` plus ``@table`` when a table is named."""
        return f"{self.family}/{self.task}" + (f"@{self.table}" if self.table else "")


# ------------------------------------------------------------------------------------------ targets
def _group_array(group: Sequence[int] | np.ndarray, n: int | None = None) -> np.ndarray:
    g = np.asarray(group)
    if g.ndim != 1 or (g.size and not np.issubdtype(g.dtype, np.integer)):
        raise ValueError(f"group ids must be a 1-D integer array, got dtype {g.dtype} shape {g.shape}")
    if n is not None and g.size != n:
        raise ValueError(f"{g.size} group ids for {n} values")
    if g.size and g.min() < 0:
        raise ValueError(f"group ids must be >= 0, got {int(g.min())}")
    return g.astype(np.int64)


def zscore_within(values: Sequence[float] | np.ndarray, group: Sequence[int] | np.ndarray) -> np.ndarray:
    """``values`` standardised within each group (mean 0, std 1; a constant group becomes 0).

    Raises:
        ValueError: non-finite values (naming the group) or mismatched lengths.
    """
    v = np.asarray(values, dtype=np.float64)
    g = _group_array(group, v.size)
    out = np.zeros_like(v)
    for gid in np.unique(g):
        mask = g == gid
        x = v[mask]
        if not np.isfinite(x).all():
            raise ValueError(f"group {int(gid)} has non-finite labels")
        std = x.std()
        out[mask] = (x - x.mean()) / std if std > 0 else 0.0
    return out


def flops_targets_within(
    labels: Sequence[float] | np.ndarray, group: Sequence[int] | np.ndarray, gflops: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, dict[int, FlopsTransform]]:
    """GENNAPE's eq. 5 target ``Z(A / (log10(GFLOPs+1)+1))`` with ``Z`` fitted within each group.

    Returns the targets and each group's fitted :class:`cgpredict.models.transform.FlopsTransform`
    (its ``inverse`` maps that group's predictions back to accuracies).

    Raises:
        ValueError: mismatched lengths, negative or non-finite GFLOPs, non-finite labels.
    """
    from cgpredict.models.transform import FlopsTransform

    a = np.asarray(labels, dtype=np.float64)
    f = np.asarray(gflops, dtype=np.float64)
    g = _group_array(group, a.size)
    if f.shape != a.shape:
        raise ValueError(f"{a.size} labels but {f.size} GFLOPs values")
    out = np.zeros_like(a)
    transforms: dict[int, FlopsTransform] = {}
    for gid in np.unique(g):
        mask = g == gid
        if not np.isfinite(a[mask]).all():
            raise ValueError(f"group {int(gid)} has non-finite labels")
        transform = FlopsTransform(use_flops=True).fit(a[mask], f[mask])
        out[mask] = transform.transform(a[mask], f[mask])
        transforms[int(gid)] = transform
    return out, transforms


# ------------------------------------------------------------------------------------------ data
@dataclass
class LabelledGroups:
    """CGs with labels and a group id per CG (see the module docstring).

    Attributes:
        names: group id → group name (``family/task[@table]``).
        families: group id → family.
        truth: group id → ``False`` for a low-fidelity group (never a test group).
        group: group id of every network.
        labels: raw label of every network (accuracy, SSIM, … or a low-fidelity accuracy).
        keys: identity key of every network (:func:`cgpredict.datasets.overlap.identity_keys`: the
            NB-101 hash for NB-101, else the canonical arch text), comparable across groups of a family.
        cgs: the CGs (``None`` when loaded with ``cgs=False``).
    """

    names: list[str]
    families: list[str]
    truth: list[bool]
    group: np.ndarray
    labels: np.ndarray
    keys: list[str]
    cgs: list[CG] | None = None
    _gflops: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.float64)
        self.group = _group_array(self.group, self.labels.size)
        if not (len(self.names) == len(self.families) == len(self.truth)):
            raise ValueError(f"{len(self.names)} group names, {len(self.families)} families, {len(self.truth)} truth flags")
        if self.group.size and self.group.max() >= len(self.names):
            raise ValueError(f"group id {int(self.group.max())} but only {len(self.names)} groups")
        if len(self.keys) != self.labels.size or (self.cgs is not None and len(self.cgs) != self.labels.size):
            raise ValueError(f"{self.labels.size} labels, {len(self.keys)} keys, "
                             f"{None if self.cgs is None else len(self.cgs)} CGs")

    def __len__(self) -> int:
        return int(self.labels.size)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {s}" for n, s in zip(self.names, self.sizes()))
        return f"LabelledGroups({len(self)} nets; {parts})"

    def sizes(self) -> np.ndarray:
        """Number of networks of every group (by group id)."""
        return np.bincount(self.group, minlength=len(self.names))

    def gflops(self) -> np.ndarray:
        """GMACs (torchvision convention) of every CG, computed once."""
        if self._gflops is None:
            if self.cgs is None:
                raise ValueError("these groups were loaded without CGs (cgs=False): no FLOPs")
            self._gflops = np.asarray([cg.flops / 1e9 for cg in self.cgs], dtype=np.float64)
        return self._gflops

    def targets(self, flops_transform: bool = False) -> np.ndarray:
        """Training targets: labels z-scored within each group, or GENNAPE's eq. 5 per group."""
        if flops_transform:
            return flops_targets_within(self.labels, self.group, self.gflops())[0]
        return zscore_within(self.labels, self.group)

    def take(self, indices: Iterable[int] | np.ndarray) -> LabelledGroups:
        """The networks at ``indices`` (group ids and names unchanged)."""
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        return LabelledGroups(
            names=list(self.names), families=list(self.families), truth=list(self.truth),
            group=self.group[idx], labels=self.labels[idx], keys=[self.keys[i] for i in idx],
            cgs=None if self.cgs is None else [self.cgs[i] for i in idx],
            _gflops=None if self._gflops is None else self._gflops[idx],
        )

    def without(self, keys: Iterable[str]) -> LabelledGroups:
        """The networks whose identity key is not in ``keys`` (e.g. a test table's, before training)."""
        drop = set(keys)
        return self.take(np.asarray([i for i, k in enumerate(self.keys) if k not in drop], dtype=np.int64))

    def select(self, groups: Iterable[int | str]) -> LabelledGroups:
        """The networks of the given groups (ids or names)."""
        ids = {self.names.index(g) if isinstance(g, str) else int(g) for g in groups}
        return self.take(np.flatnonzero(np.isin(self.group, sorted(ids))))


def _subset_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def load_groups(
    specs: Iterable[str | GroupSpec],
    n_per_group: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    cgs: bool = True,
    progress: bool = True,
    workers: int = 1,
) -> LabelledGroups:
    """Load labelled groups (``family[/task][@table]`` each) as one :class:`LabelledGroups`.

    Args:
        specs: the groups, e.g. ``["nasbench101/cifar10@nb101_30k", "nasbench201/cifar10@nb201_200ep",
            "nasbench301", "transbench101_micro/jigsaw"]``.
        n_per_group: keep at most this many networks of each group, a seeded random subset that
            depends only on ``seed`` and the group's name; ``None`` keeps all.
        seed: the subset seed.
        data_dir: the labelled-data folder (default ``$CGPREDICT_DATA``).
        cgs: convert (or read from the cache) the CGs; ``False`` loads labels only.
        progress, workers: passed to :meth:`cgpredict.datasets.Family.cgs`.

    Raises:
        ValueError: a malformed or repeated group, a group without labels, ``n_per_group`` < 1.
    """
    from cgpredict.datasets.family import load_family
    from cgpredict.datasets.overlap import identity_keys

    if n_per_group is not None and n_per_group < 1:
        raise ValueError(f"n_per_group must be >= 1 or None, got {n_per_group}")
    names: list[str] = []
    families: list[str] = []
    truth: list[bool] = []
    group: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    keys: list[str] = []
    all_cgs: list[CG] = []
    for raw in specs:
        spec = GroupSpec.parse(raw)
        if spec.name in names:
            raise ValueError(f"group {spec.name!r} is listed twice")
        fam = load_family(spec.family, task=spec.task, data_dir=data_dir, table=spec.table)
        is_truth = bool(getattr(fam, "truth", True))
        values = fam.labels if is_truth else fam.low_fidelity_labels()  # type: ignore[attr-defined]
        if values is None:
            raise ValueError(f"group {spec.name!r} has no labels")
        if n_per_group is not None and n_per_group < len(fam):
            idx = np.sort(_subset_rng(seed, spec.name).permutation(len(fam))[:n_per_group])
            fam, values = fam.subset(idx), np.asarray(values)[idx]
        gid = len(names)
        names.append(spec.name)
        families.append(spec.family)
        truth.append(is_truth)
        group.append(np.full(len(fam), gid, dtype=np.int64))
        labels.append(np.asarray(values, dtype=np.float64))
        keys.extend(identity_keys(fam))
        if cgs:
            all_cgs.extend(fam.cgs(progress=progress, workers=workers))
    if not names:
        raise ValueError("load_groups needs at least one group")
    return LabelledGroups(names, families, truth, np.concatenate(group), np.concatenate(labels), keys,
                          cgs=all_cgs if cgs else None)


# ------------------------------------------------------------------------------------------ sampler
class BalancedGroupSampler:
    """Batches of network indices in which every group is equally likely, whatever its size.

    Each batch draws ``groups_per_batch`` distinct groups uniformly at random and takes
    ``batch_size // groups_per_batch`` networks of each (the remainder spread over the first
    groups; a group smaller than its share gives all its networks). Within a group networks come
    from a shuffled cycle, so every network is seen before any is repeated. Networks of one group
    sit together in a batch, so within-group pairwise or listwise losses have pairs to compare.

    Args:
        group: group id of every network (e.g. :attr:`LabelledGroups.group`).
        batch_size: networks per batch.
        groups_per_batch: groups per batch; default ``min(#groups, max(1, batch_size // 16))`` (at
            least 16 networks of a group per batch).
        num_batches: batches per epoch; default ``ceil(#networks / batch_size)``.
        seed: the seed; :meth:`set_epoch` changes the stream deterministically.

    Example:
        >>> sampler = BalancedGroupSampler(np.repeat([0, 1], [30000, 700]), batch_size=64, seed=0)
        >>> batch = next(iter(sampler))       # 32 nets of each group
    """

    def __init__(self, group: Sequence[int] | np.ndarray, batch_size: int, groups_per_batch: int | None = None,
                 num_batches: int | None = None, seed: int = 0) -> None:
        self.group = _group_array(group)
        if self.group.size == 0:
            raise ValueError("BalancedGroupSampler needs at least one network")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.members = [np.flatnonzero(self.group == g) for g in np.unique(self.group)]
        n_groups = len(self.members)
        if groups_per_batch is None:
            groups_per_batch = min(n_groups, max(1, batch_size // 16))
        if not 1 <= groups_per_batch <= min(n_groups, batch_size):
            raise ValueError(f"groups_per_batch must be in 1..{min(n_groups, batch_size)} "
                             f"({n_groups} groups, batch size {batch_size}), got {groups_per_batch}")
        self.batch_size = int(batch_size)
        self.groups_per_batch = int(groups_per_batch)
        self.num_batches = int(num_batches) if num_batches is not None else math.ceil(self.group.size / batch_size)
        if self.num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}")
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the stream of ``epoch`` (deterministic for ``(seed, epoch)``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = [rng.permutation(m) for m in self.members]
        cursor = [0] * len(self.members)
        k = self.groups_per_batch
        for _ in range(self.num_batches):
            chosen = rng.choice(len(self.members), size=k, replace=False)
            base, extra = divmod(self.batch_size, k)
            parts = []
            for rank, g in enumerate(chosen):
                want = min(base + (1 if rank < extra else 0), self.members[g].size)
                take: list[int] = []
                while want > 0:
                    if cursor[g] >= order[g].size:  # cycle done: reshuffle, this batch's picks last
                        fresh = rng.permutation(self.members[g])
                        repeat = np.isin(fresh, take)
                        order[g], cursor[g] = np.concatenate([fresh[~repeat], fresh[repeat]]), 0
                    step = min(want, order[g].size - cursor[g])
                    take.extend(order[g][cursor[g] : cursor[g] + step].tolist())
                    cursor[g] += step
                    want -= step
                parts.append(np.asarray(take, dtype=np.int64))
            yield np.concatenate(parts)


# ------------------------------------------------------------------------------------------ splits
@dataclass(frozen=True)
class Split:
    """One leave-one-family-out split, over group ids.

    Attributes:
        held_out: the held-out family.
        variant: ``"lofo"`` (only the family leaves training) or ``"strict"`` (every family of
            :data:`NB201_CELL_FAMILIES` leaves training).
        train_groups: groups to train on (low-fidelity groups included).
        test_groups: the held-out family's ground-truth groups.
    """

    held_out: str
    variant: Literal["lofo", "strict"]
    train_groups: tuple[int, ...]
    test_groups: tuple[int, ...]

    def indices(self, group: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(train, test)`` network indices given every network's group id."""
        g = _group_array(group)
        return np.flatnonzero(np.isin(g, self.train_groups)), np.flatnonzero(np.isin(g, self.test_groups))


def lofo_splits(families: Sequence[str], truth: Sequence[bool] | None = None, strict: bool = False,
                cell_families: Sequence[str] = NB201_CELL_FAMILIES) -> list[Split]:
    """One split per family that has a ground-truth group, in order of first appearance.

    Args:
        families: group id → family (e.g. :attr:`LabelledGroups.families`).
        truth: group id → ``False`` for low-fidelity groups (trained on, never tested); default all True.
        strict: when the held-out family is one of ``cell_families``, remove all of them from
            training (variant ``"strict"``); other families' splits are the plain ones.
        cell_families: the families sharing the NB-201 cell vocabulary.

    Raises:
        ValueError: ``truth`` of another length.
    """
    truth = [True] * len(families) if truth is None else [bool(t) for t in truth]
    if len(truth) != len(families):
        raise ValueError(f"{len(families)} group families but {len(truth)} truth flags")
    out: list[Split] = []
    for held in dict.fromkeys(families):
        test = tuple(g for g, f in enumerate(families) if f == held and truth[g])
        if not test:
            continue
        is_strict = strict and held in cell_families
        removed = set(cell_families) | {held} if is_strict else {held}
        train = tuple(g for g, f in enumerate(families) if f not in removed)
        out.append(Split(held, "strict" if is_strict else "lofo", train, test))
    return out


def protocol_splits(families: Sequence[str], truth: Sequence[bool] | None = None,
                    cell_families: Sequence[str] = NB201_CELL_FAMILIES) -> list[Split]:
    """The issue's protocol: every plain LOFO split, plus the strict split of each cell family held out."""
    plain = lofo_splits(families, truth, strict=False, cell_families=cell_families)
    strict = [s for s in lofo_splits(families, truth, strict=True, cell_families=cell_families) if s.variant == "strict"]
    return plain + strict
