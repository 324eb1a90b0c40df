"""The generalist predictor: one ranking model trained on many labelled families, read on any new one.

Pipeline position: model → CG → proxy bank scores + per-node statistics (:mod:`cgpredict.proxies.bank`,
disk-cached) and CG descriptors (:mod:`~cgpredict.generalist.descriptors`) → raw columns →
set-relative features (:mod:`~cgpredict.generalist.features`) → :class:`~cgpredict.generalist.ProxyRanker`
→ **GeneralistPredictor** (scores of a set; higher = predicted better).

Columns of one network (:meth:`GeneralistPredictor.columns`):

* the graph scores of every training-free proxy of the bank (:data:`FEATURE_PROXIES`);
* ``log_flops`` and ``log_params``;
* the CG descriptors (:data:`~cgpredict.generalist.descriptors.CG_COLUMNS`: depth, shortest
  weighted path, number of paths, merges, …);
* pooled per-node proxy statistics (min and median over nodes of SynFlow saliency, NASWOT, ZiCo,
  MeCo, gradient std).

Every column is rank-normalised *within the set being ranked*, so a proxy's absolute scale (which
differs by family, input size and number of classes) never matters; a proxy that fails on a network
gives the neutral value plus a mask column. A set of one network is placed against the stored
training group whose FLOPs are closest (its :class:`~cgpredict.generalist.SetReference`).
:meth:`GeneralistPredictor.ood` says which training group covers a set best and flags a set that
lies partly outside every group's range (an extrapolation; below :data:`OOD_COVERAGE`).

Two rankers are fitted: ``ranker_`` on every column and ``cg_ranker_`` on the graph columns alone
(FLOPs, params, descriptors), used with ``use_proxies=False`` — fast, no network is run. In
``ranker_`` the *structure* columns (CG descriptors and pooled node statistics) carry
``structure_penalty`` times the ridge penalty of the proxy, FLOPs and params columns: across
families they transfer worse than the proxies (leave-one-family-out, ``benchmarks/results/
generalist_lofo_noise.md``: zero-shot quality rises monotonically with the multiplier and saturates
near :data:`STRUCTURE_PENALTY`), so zero-shot they keep weights near zero, while :meth:`finetune` on a
family's own labels can still give them weight (there they add most: NB-301 and NATS 50-shot).

Training is multi-family: :meth:`GeneralistPredictor.fit` takes a group per CG (family/task);
labels are compared only within a group and groups are balanced (each carries its weight, default
1, whatever its size). :meth:`GeneralistPredictor.finetune` adapts a fitted ``ridge`` generalist to
a few labelled networks of one family: ridge regression on those networks shrunk towards the
generalist's coefficients (not away from zero), so 20–50 labels adjust, rather than replace, what
was learned across families; then a Weisfeiler-Lehman graph-kernel ridge on those networks' CGs
(:mod:`~cgpredict.generalist.graph_kernel`) learns which operations, where, the columns miss.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgpredict.cg import CG
from cgpredict.generalist.descriptors import CG_COLUMNS, POOLED_STATS, cg_descriptors, pooled_names, pooled_node_stats
from cgpredict.generalist.features import FEATURE_PROXIES, SetReference, raw_columns, set_features
from cgpredict.generalist.graph_kernel import ShotKernelRidge, wl_features
from cgpredict.generalist.ranker import ProxyRanker, within_group_targets
from cgpredict.predictor.base import Estimator, check_is_fitted

__all__ = ["FINETUNE_STRENGTH", "GENERALIST_FORMAT", "GRAPH_COLUMNS", "OOD_COVERAGE", "STRUCTURE_PENALTY",
           "GeneralistPredictor"]

#: ``config.json`` format tag of a saved generalist.
GENERALIST_FORMAT = "cgpredict.generalist"
#: Columns that need no network run (the ``use_proxies=False`` ranker reads these).
GRAPH_COLUMNS: tuple[str, ...] = ("log_flops", "log_params", *CG_COLUMNS)
#: :meth:`GeneralistPredictor.ood` flags a set whose best training group covers less than this share of
#: its graph-column values. Measured (``benchmarks/results/encoder_ood.md``): sets of a family the
#: checkpoint was trained on cover 0.92–1.00 of a group, sets of the six families it never saw 0.73–0.86;
#: leave-one-family-out on sampled families agrees (in-family sets ≥ 0.95).
OOD_COVERAGE = 0.9
#: Default pull of :meth:`GeneralistPredictor.finetune` towards the generalist's coefficients.
FINETUNE_STRENGTH = 0.1
#: Default multiplier of the ridge penalty on the structure columns (CG descriptors, pooled node
#: statistics) of the proxy ranker; picked by leave-one-family-out over 1, 3, 10, 30, 100, 1000
#: (family-mean zero-shot Spearman 0.663, 0.689, 0.697, 0.700, 0.701, 0.701 in
#: ``benchmarks/results/generalist_lofo_noise.md``; 50-shot as good as with 1).
STRUCTURE_PENALTY = 100.0
#: Reference values kept per training group and column (quantiles; keeps checkpoints small).
_REFERENCE_POINTS = 101


class GeneralistPredictor(Estimator):
    """Ranks any set of networks from proxy scores and CG descriptors; trained across families.

    Args:
        proxies: bank proxies read as columns (default: every training-free proxy of the bank).
        descriptors: the proxy ranker also reads the CG descriptors (``False`` with ``node_stats=False``:
            the "proxies-only" ranker of proxy scores, FLOPs and params).
        node_stats: the proxy ranker also reads the pooled per-node proxy statistics.
        use_proxies: run the proxy bank at prediction time (``False``: the graph-only ranker).
        kind: :class:`~cgpredict.generalist.ProxyRanker` kind (``ridge``, ``pairwise``, ``mlp``,
            ``consensus``).
        alpha: the ranker's L2 penalty (towards zero; :meth:`finetune` pulls towards the generalist instead).
        structure_penalty: multiplier of ``alpha`` for the structure columns (CG descriptors, pooled
            node statistics and their masks) of the proxy ranker; 1.0 treats every column alike.
            ``ridge`` kind only: the other kinds read every column alike whatever its value.
        bank: :class:`~cgpredict.proxies.bank.BankConfig` fields (batch size, resolution, seed …).
        max_resolution: networks with a larger input side are scored by the bank at this side (the
            training families ran at 16–64 pixels; an ImageNet-size net costs ~12× less at 64 than at
            224); ``None``: always the network's own size.
        executor: where the bank scores networks missing from its cache (an :mod:`cgpredict.executors`
            executor, or a spec such as ``"local:2"`` or ``"ray:auto"``; ``None``: in this process).
            Same numbers. Not saved with the checkpoint (a loaded model runs in-process).
        seed: the ranker's seed (pairwise / mlp kinds).
        progress: progress bars while the bank runs.

    Example:
        >>> from cgpredict.generalist import GeneralistPredictor
        >>> model = GeneralistPredictor.pretrained()          # doctest: +SKIP
        >>> scores = model.predict(cgs)                       # doctest: +SKIP
    """

    #: Duck-typing flag read by :mod:`cgpredict.ranking` and the CLI: scores rank a set, they are not accuracies.
    predicts_accuracy = False

    def __init__(self, proxies: Sequence[str] = FEATURE_PROXIES, descriptors: bool = True, node_stats: bool = True,
                 use_proxies: bool = True, kind: str = "ridge", alpha: float = 1.0,
                 structure_penalty: float = STRUCTURE_PENALTY, bank: Mapping[str, Any] | None = None,
                 max_resolution: int | None = 64, executor: Any = None, seed: int = 0, progress: bool = True) -> None:
        self.proxies = tuple(proxies)
        self.descriptors = descriptors
        self.node_stats = node_stats
        self.use_proxies = use_proxies
        self.kind = kind
        self.alpha = alpha
        self.structure_penalty = structure_penalty
        self.bank = dict(bank or {})
        self.max_resolution = max_resolution
        self.executor = executor
        self.seed = seed
        self.progress = progress

    # ------------------------------------------------------------------ columns

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of the raw columns (:meth:`columns`), in order (every column, whatever the options)."""
        return (*self.proxies, *GRAPH_COLUMNS, *pooled_names())

    @property
    def ranker_columns(self) -> tuple[str, ...]:
        """The columns the proxy ranker reads (the graph-only ranker reads :data:`GRAPH_COLUMNS`)."""
        graph = GRAPH_COLUMNS if self.descriptors else GRAPH_COLUMNS[:2]
        return (*self.proxies, *graph, *(pooled_names() if self.node_stats else ()))

    @property
    def ranker_features(self) -> tuple[str, ...]:
        """Names of the proxy ranker's features: :attr:`ranker_columns`, then a ``<column>:missing``
        mask for each proxy column and pooled node statistic (the order of ``ranker_.coef_``)."""
        names = self.ranker_columns
        return (*names, *(f"{c}:missing" for c in self._masked(names)))

    def structure_penalties(self) -> np.ndarray:
        """Per-feature multipliers of ``alpha`` in the proxy ranker (:attr:`ranker_features` order):
        ``structure_penalty`` for the CG descriptors, pooled node statistics and their masks, else 1."""
        structure = set(CG_COLUMNS) | set(pooled_names())
        return np.array([float(self.structure_penalty) if name.removesuffix(":missing") in structure else 1.0
                         for name in self.ranker_features])

    def bank_config(self, cg: CG) -> Any:
        """The :class:`~cgpredict.proxies.bank.BankConfig` ``cg`` is scored with: the ``bank`` fields,
        and ``resolution = max_resolution`` when the CG's input is larger (and no resolution is set)."""
        from cgpredict.proxies.bank import BankConfig

        fields = dict(self.bank)
        shape = cg.input_nodes[0].out_shape if cg.input_nodes else ()
        side = max(shape[2:]) if len(shape) == 4 else None
        if fields.get("resolution") is None and self.max_resolution and side and side > self.max_resolution:
            fields["resolution"] = int(self.max_resolution)
        return BankConfig(**fields)

    def bank_results(self, cgs: Sequence[CG]) -> list:
        """The proxy bank's results for ``cgs`` (disk-cached; failures are NaN entries).

        Networks with inputs larger than ``max_resolution`` are scored at that side; one whose every
        data proxy fails there (a net that cannot run at another size) is scored at its own size.
        """
        from cgpredict.proxies.bank import PROXIES, bank_scores_many

        cgs = list(cgs)
        configs = [self.bank_config(cg) for cg in cgs]
        out: list[Any] = [None] * len(cgs)
        for config in dict.fromkeys(configs):
            idx = [i for i, c in enumerate(configs) if c == config]
            results = bank_scores_many([cgs[i] for i in idx], self.proxies, config, progress=self.progress,
                                       executor=self.executor)
            for i, res in zip(idx, results):
                out[i] = res
        data = [m for m in self.proxies if PROXIES[m].group == "data"]
        retry = [i for i, (c, r) in enumerate(zip(configs, out))
                 if c.resolution is not None and self.bank.get("resolution") is None and data
                 and all(m in r.errors for m in data)]
        if retry:
            from cgpredict.proxies.bank import BankConfig

            again = bank_scores_many([cgs[i] for i in retry], self.proxies, BankConfig(**self.bank),
                                     progress=self.progress, executor=self.executor)
            for i, res in zip(retry, again):
                out[i] = res
        return out

    def columns(self, cgs: Sequence[CG], bank: Sequence[Any] | None = None,
                use_proxies: bool | None = None) -> np.ndarray:
        """Raw columns ``float64 (len(cgs), len(column_names))`` (proxy columns NaN without proxies).

        Args:
            cgs: the networks.
            bank: their :class:`~cgpredict.proxies.bank.BankResult` s, when already computed.
            use_proxies: run the bank (default: the ``use_proxies`` parameter).
        """
        cgs = list(cgs)
        use = self.use_proxies if use_proxies is None else use_proxies
        if use and bank is None:
            bank = self.bank_results(cgs)
        n = len(cgs)
        if use:
            if len(bank) != n:
                raise ValueError(f"{len(bank)} bank results for {n} CGs")
            scores = {m: [r.scores.get(m, math.nan) for r in bank] for m in self.proxies}
        else:
            scores = {m: [math.nan] * n for m in self.proxies}
        raw, _ = raw_columns(scores, [c.flops for c in cgs], [c.params for c in cgs], self.proxies)
        parts = [raw, np.stack([cg_descriptors(c) for c in cgs]) if n else np.zeros((0, len(CG_COLUMNS)))]
        pooled = [pooled_node_stats(r.node) if use else np.full(2 * len(POOLED_STATS), math.nan)
                  for r in (bank if use else [None] * n)]
        parts.append(np.stack(pooled) if n else np.zeros((0, 2 * len(POOLED_STATS))))
        return np.concatenate(parts, axis=1)

    def _features(self, raw: np.ndarray, graph_only: bool, reference: SetReference | None = None) -> np.ndarray:
        names = GRAPH_COLUMNS if graph_only else self.ranker_columns
        keep = [self.column_names.index(c) for c in names]
        if reference is not None:
            reference = SetReference(names, tuple(reference.values[k] for k in keep))
        return set_features(raw[:, keep], names, reference=reference, proxies=self._masked(names)).matrix

    def _masked(self, names: Sequence[str]) -> tuple[str, ...]:
        """The columns among ``names`` that get a ``:missing`` mask: proxy scores and pooled node statistics."""
        return tuple(c for c in names if c in self.proxies or ":" in c)

    # ------------------------------------------------------------------ fitting

    def fit(self, cgs: Sequence[CG], y: Sequence[float], groups: Sequence[Hashable],
            group_weights: Mapping[Hashable, float] | None = None, bank: Sequence[Any] | None = None,
            raw: np.ndarray | None = None) -> GeneralistPredictor:
        """Learn from labelled networks of several groups (families/tasks); returns ``self``.

        Args:
            cgs: the training networks.
            y: one label per network (higher = better; scales may differ between groups).
            groups: one group id per network; labels are compared only within a group.
            group_weights: total weight per group (default 1 each, whatever its size).
            bank: precomputed bank results aligned with ``cgs`` (else the bank runs, cached).
            raw: precomputed :meth:`columns` of ``cgs`` (skips the bank and the descriptors).

        Raises:
            ValueError: mismatched lengths, or no group with two differently labelled networks.
        """
        cgs, y = list(cgs), np.asarray(y, dtype=float)
        groups = list(groups)
        if not (len(cgs) == len(y) == len(groups)):
            raise ValueError(f"{len(cgs)} CGs, {len(y)} labels and {len(groups)} groups: one of each per network")
        if not np.all(np.isfinite(y)):
            raise ValueError("labels must be finite")
        raw = self.columns(cgs, bank, use_proxies=True) if raw is None else np.asarray(raw, dtype=float)
        if raw.shape != (len(cgs), len(self.column_names)):
            raise ValueError(f"raw columns have shape {raw.shape}, expected {(len(cgs), len(self.column_names))}")
        ids = list(dict.fromkeys(groups))
        index = {g: np.flatnonzero(np.array([h == g for h in groups])) for g in ids}
        weights = [float((group_weights or {}).get(g, 1.0)) for g in ids]
        full = [self._features(raw[index[g]], False) for g in ids]
        graph = [self._features(raw[index[g]], True) for g in ids]
        labels = [y[index[g]] for g in ids]
        penalty = self.structure_penalties() if self.kind == "ridge" and self.structure_penalty != 1.0 else None
        self.ranker_ = self._ranker(penalty).fit(full, labels, weights)
        self.cg_ranker_ = self._ranker().fit(graph, labels, weights)
        self.groups_ = {str(g): {"n": int(len(index[g])), "weight": w} for g, w in zip(ids, weights)}
        self.references_ = {str(g): _reference(raw[index[g]], self.column_names) for g in ids}
        return self

    def _ranker(self, penalty: np.ndarray | None = None) -> ProxyRanker:
        return ProxyRanker(self.kind, alpha=self.alpha, seed=self.seed, penalty=penalty)

    def finetune(self, cgs: Sequence[CG], y: Sequence[float], strength: float | None = None,
                 bank: Sequence[Any] | None = None, raw: np.ndarray | None = None,
                 graph_kernel: bool = True) -> GeneralistPredictor:
        """Adapt a fitted ``ridge`` generalist to labelled networks of one family; returns ``self``.

        Two steps. First the linear rankers: ``min_c  mean_i (x_i·c − t_i)² + strength·‖c − c₀‖²``
        with ``x`` the set-relative features of ``cgs`` (centred), ``t`` their within-set
        standardised labels and ``c₀`` the generalist's coefficients (kept as ``prior_coef_``). Both
        rankers are adapted. The pull is the same on every column, so structure columns the
        generalist kept near zero (its ``structure_penalty``) can gain weight when this family's
        labels support them. Then (``graph_kernel``) a :class:`~cgpredict.generalist.graph_kernel.ShotKernelRidge`
        per ranker on the networks' Weisfeiler-Lehman graph kernel plus the adapted linear score,
        its weights picked by leave-one-out on these networks only (``kernel_``, ``cg_kernel_``):
        it learns which operations, where, the columns miss (50-shot NB-301 0.753 → 0.819; the other
        families' tables move −0.007 to +0.020: ``benchmarks/results/generalist_lofo_noise.md``). From then on
        :meth:`predict` needs the CGs themselves, not only their columns.

        Args:
            cgs: the labelled networks (≥ 3, not all with the same label).
            y: their labels.
            strength: pull towards the generalist (default :data:`FINETUNE_STRENGTH`; → 0: least
                squares on these networks alone, → ∞: the generalist unchanged).
            bank, raw: as in :meth:`fit`.
            graph_kernel: add the graph-kernel step (needs real CGs in ``cgs``; ``False``: the linear
                rankers only, e.g. from precomputed ``raw`` columns without graphs).

        Raises:
            ValueError: a kind other than ``ridge``, too few distinct labels, or ``graph_kernel`` without CGs.
        """
        check_is_fitted(self, "ranker_", "GeneralistPredictor")
        if self.kind != "ridge":
            raise ValueError(f"finetune adapts the ridge kind only (this generalist is {self.kind!r})")
        y = np.asarray(y, dtype=float)
        if len(y) < 3 or np.ptp(y) == 0:
            raise ValueError("finetune needs at least 3 labelled networks with different labels")
        cgs = list(cgs)
        raw = self.columns(cgs, bank, use_proxies=self.use_proxies) if raw is None else np.asarray(raw, dtype=float)
        lam = FINETUNE_STRENGTH if strength is None else float(strength)
        if lam < 0:
            raise ValueError(f"strength must be >= 0, got {lam}")
        if graph_kernel:
            _require_graphs(cgs, "finetune(graph_kernel=True)")
        t = within_group_targets(y)
        for attr, graph_only in (("ranker_", False), ("cg_ranker_", True)):
            ranker = getattr(self, attr)
            x = self._features(raw, graph_only)
            x = x - x.mean(axis=0)
            prior = getattr(ranker, "prior_coef_", ranker.coef_)
            ranker.prior_coef_ = prior
            ridge = max(lam, 1e-9) * np.eye(x.shape[1])  # a tiny floor keeps strength 0 solvable
            ranker.coef_ = np.linalg.solve(x.T @ x / len(y) + ridge, x.T @ t / len(y) + ridge @ prior)
        self.kernel_ = self.cg_kernel_ = None
        if graph_kernel:
            bags = [wl_features(cg) for cg in cgs]
            for attr, ranker, graph_only in (("kernel_", self.ranker_, False), ("cg_kernel_", self.cg_ranker_, True)):
                base = ranker.predict(self._features(raw, graph_only))
                setattr(self, attr, ShotKernelRidge(seed=self.seed).fit(bags, base, y))
        return self

    # ------------------------------------------------------------------ using

    def predict(self, cgs: Sequence[CG], bank: Sequence[Any] | None = None, use_proxies: bool | None = None,
                reference: str | None = None, raw: np.ndarray | None = None) -> np.ndarray:
        """Ranking scores of a set of networks (higher = predicted better; only their order means
        something, and only within this set).

        Args:
            cgs: the networks (one network: placed against the training group nearest in FLOPs).
            bank: precomputed bank results aligned with ``cgs``.
            use_proxies: override the ``use_proxies`` parameter (``False``: no network is run).
            reference: rank against this stored training group (:attr:`groups_`) instead of the set.
            raw: precomputed :meth:`columns` of ``cgs``.
        """
        check_is_fitted(self, "ranker_", "GeneralistPredictor")
        cgs = list(cgs)
        if not cgs:
            return np.zeros(0)
        use = self.use_proxies if use_proxies is None else use_proxies
        raw = self.columns(cgs, bank, use_proxies=use) if raw is None else np.asarray(raw, dtype=float)
        ref = None
        if reference is not None:
            if reference not in self.references_:
                raise ValueError(f"no training group {reference!r}; stored groups: {sorted(self.references_)}")
            ref = self.references_[reference]
        elif len(cgs) < 2:
            ref = self.references_[self.nearest_group(raw)]
        ranker = self.ranker_ if use else self.cg_ranker_
        score = ranker.predict(self._features(raw, not use, ref))
        kernel = getattr(self, "kernel_" if use else "cg_kernel_", None)
        if kernel is None:
            return score
        _require_graphs(cgs, "a generalist fine-tuned with its graph kernel")
        return kernel.predict([wl_features(cg) for cg in cgs], score)

    def coverage(self, cgs: Sequence[CG], raw: np.ndarray | None = None) -> dict[str, float]:
        """How far ``cgs`` lie inside each stored training group, from the graph columns alone.

        For each group: the share of (network, column) pairs of :data:`GRAPH_COLUMNS` whose value lies
        within that group's training range ``[min, max]`` (no network is run). 1.0: every column of
        every network is inside the group's range; a set with a small coverage for every group is
        unlike anything the ranker was trained on, and its ranking is an extrapolation.
        """
        check_is_fitted(self, "ranker_", "GeneralistPredictor")
        raw = self.columns(list(cgs), use_proxies=False) if raw is None else np.asarray(raw, dtype=float)
        keep = [self.column_names.index(c) for c in GRAPH_COLUMNS]
        out = {}
        for g, ref in self.references_.items():
            inside = []
            for k in keep:
                values = ref.values[k][np.isfinite(ref.values[k])]
                col = raw[:, k]
                inside.append((col >= values.min()) & (col <= values.max()) if values.size else np.zeros(len(col), bool))
            out[g] = float(np.mean(inside)) if len(raw) else math.nan
        return out

    def ood(self, cgs: Sequence[CG], raw: np.ndarray | None = None, threshold: float = OOD_COVERAGE) -> dict[str, Any]:
        """``{"nearest_group", "coverage", "flag"}``: the training group covering ``cgs`` best
        (:meth:`coverage`) and whether even that one covers less than ``threshold`` of their values
        (default :data:`OOD_COVERAGE`)."""
        cover = self.coverage(cgs, raw)
        best = max(cover, key=cover.get)
        return {"nearest_group": best, "coverage": cover[best], "flag": bool(cover[best] < threshold)}

    def nearest_group(self, raw: np.ndarray) -> str:
        """The stored training group whose median ``log_flops`` is nearest to the mean of ``raw``'s."""
        j = self.column_names.index("log_flops")
        target = float(np.mean(raw[:, j]))
        return min(self.references_, key=lambda g: abs(float(np.median(self.references_[g].values[j])) - target))

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, card: Mapping[str, Any] | None = None, model_card: str | None = None) -> Path:
        """Write a checkpoint folder (``config.json``, ``weights.pt``, manifest), atomically.

        Args:
            path: the folder (replaced if it is a cgpredict checkpoint; any other folder is refused).
            card: JSON-serialisable training facts stored under ``config.json``'s ``card``.
            model_card: markdown text written as ``MODEL_CARD.md`` (covered by the manifest).
        """
        check_is_fitted(self, "ranker_", "GeneralistPredictor")
        from cgpredict.predictor import checkpoint

        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ("executor", "progress")}
        doc = {**checkpoint.header(GENERALIST_FORMAT), "params": _jsonable(params),
               "columns": list(self.column_names), "groups": self.groups_,
               "reference_groups": list(self.references_), "card": dict(card or {})}
        tensors = {**_ranker_tensors("ranker", self.ranker_), **_ranker_tensors("cg_ranker", self.cg_ranker_),
                   **{f"reference.{i}": _stack_reference(ref) for i, ref in enumerate(self.references_.values())}}
        for name in ("kernel", "cg_kernel"):
            kernel = getattr(self, f"{name}_", None)
            if kernel is not None:
                doc[name], arrays = _kernel_state(kernel)
                tensors.update({f"{name}.{k}": v for k, v in arrays.items()})

        def write(folder: Path) -> None:
            import torch

            folder.mkdir(parents=True, exist_ok=True)
            checkpoint.write_files(folder, doc, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()})
            if model_card is not None:
                (folder / "MODEL_CARD.md").write_text(model_card, encoding="utf-8")

        return checkpoint.save_folder(path, write)

    @classmethod
    def load(cls, path: str | Path, progress: bool = True) -> GeneralistPredictor:
        """A generalist from a folder written by :meth:`save` (manifest checked; ``weights_only`` load).

        Raises:
            CheckpointError: missing files, a manifest mismatch, another format, or damaged arrays.
        """
        from cgpredict.predictor import checkpoint

        path = Path(path)
        doc = checkpoint.read_checkpoint_config(path, needs="config.json and weights.pt")
        if doc.get("format") != GENERALIST_FORMAT:
            raise checkpoint.CheckpointError(f"{path} is not a generalist checkpoint (format {doc.get('format')!r})")
        checkpoint.verify_manifest(path, doc)
        checkpoint.check_saved_version(path, doc)
        state = {k: v.numpy().astype(np.float64) for k, v in checkpoint.load_weights(path).items()}
        try:
            params = dict(doc["params"])
            params["progress"] = progress
            params.setdefault("structure_penalty", 1.0)  # checkpoints from before the parameter: every column alike
            model = cls(**params)
            if list(model.column_names) != list(doc["columns"]):
                raise ValueError(f"columns {doc['columns']} differ from this cgpredict's {list(model.column_names)}")
            model.ranker_ = _ranker_from(state, "ranker", model)
            model.cg_ranker_ = _ranker_from(state, "cg_ranker", model)
            model.groups_ = {str(g): dict(v) for g, v in doc["groups"].items()}
            model.references_ = {str(g): _unstack_reference(state[f"reference.{i}"], model.column_names)
                                 for i, g in enumerate(doc["reference_groups"])}
            model.card_ = dict(doc.get("card") or {})
            for name in ("kernel", "cg_kernel"):
                setattr(model, f"{name}_", _kernel_from(doc[name], state, name) if name in doc else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise checkpoint.CheckpointError(f"{path} is not a loadable generalist checkpoint ({exc})") from exc
        return model

    @classmethod
    def pretrained(cls, name: str = "generalist", progress: bool = True) -> GeneralistPredictor:
        """The generalist shipped as ``name`` (``generalist``: every labelled family; ``generalist_demo``:
        trained without the NB-201-cell families, for the demo's honest zero-shot NB-201 ranking)."""
        from cgpredict.predictor.checkpoint import pretrained_path

        return cls.load(pretrained_path(name), progress=progress)


# ---------------------------------------------------------------------- helpers


def _require_graphs(cgs: Sequence[Any], what: str) -> None:
    bad = next((i for i, cg in enumerate(cgs) if not isinstance(cg, CG)), None)
    if bad is not None:
        raise ValueError(f"{what} reads the networks' graphs, but entry {bad} is {type(cgs[bad]).__name__}, not a CG "
                         "(pass the CGs; precomputed columns alone need finetune(graph_kernel=False))")


def _reference(raw: np.ndarray, names: Sequence[str]) -> SetReference:
    """A group's reference reduced to ``_REFERENCE_POINTS`` quantiles per column."""
    full = SetReference.from_raw(raw, names)
    q = np.linspace(0.0, 1.0, _REFERENCE_POINTS)
    values = []
    for col in full.values:
        finite = col[np.isfinite(col)]
        if col.size <= _REFERENCE_POINTS or finite.size == 0:
            values.append(col)
        else:
            share_neginf = int(np.isneginf(col).sum() * _REFERENCE_POINTS / col.size)
            values.append(np.concatenate([np.full(share_neginf, -np.inf),
                                          np.quantile(finite, q[: _REFERENCE_POINTS - share_neginf])]))
    return SetReference(tuple(names), tuple(values))


def _stack_reference(ref: SetReference) -> np.ndarray:
    """Reference columns as one NaN-padded ``(columns, points)`` array."""
    width = max((len(v) for v in ref.values), default=0)
    out = np.full((len(ref.values), max(width, 1)), np.nan)
    for j, v in enumerate(ref.values):
        out[j, : len(v)] = v
    return out


def _unstack_reference(arr: np.ndarray, names: Sequence[str]) -> SetReference:
    if arr.shape[0] != len(names):
        raise ValueError(f"a reference of {arr.shape[0]} columns for {len(names)} names")
    return SetReference(tuple(names), tuple(np.sort(row[~np.isnan(row)]) for row in arr))


def _ranker_tensors(prefix: str, ranker: ProxyRanker) -> dict[str, np.ndarray]:
    out = {}
    if hasattr(ranker, "coef_"):
        out[f"{prefix}.coef"] = np.asarray(ranker.coef_, dtype=np.float64)
    if hasattr(ranker, "prior_coef_"):
        out[f"{prefix}.prior_coef"] = np.asarray(ranker.prior_coef_, dtype=np.float64)
    for i, arr in enumerate(getattr(ranker, "mlp_", ())):
        out[f"{prefix}.mlp.{i}"] = np.asarray(arr, dtype=np.float64)
    return out


def _ranker_from(state: Mapping[str, np.ndarray], prefix: str, model: GeneralistPredictor) -> ProxyRanker:
    ranker = model._ranker()
    if f"{prefix}.coef" in state:
        ranker.coef_ = state[f"{prefix}.coef"]
        ranker.n_features_in_ = int(ranker.coef_.shape[0])
    if f"{prefix}.prior_coef" in state:
        ranker.prior_coef_ = state[f"{prefix}.prior_coef"]
    mlp = [state[k] for k in sorted(k for k in state if k.startswith(f"{prefix}.mlp."))]
    if mlp:
        ranker.mlp_ = mlp
        ranker.n_features_in_ = int(mlp[0].shape[0])
    if not hasattr(ranker, "n_features_in_"):
        raise ValueError(f"weights.pt has no arrays for {prefix}")
    return ranker


def _kernel_state(kernel: ShotKernelRidge) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A fitted :class:`ShotKernelRidge` as JSON (parameters, the shots' WL vocabulary, the picks) and
    arrays (the shots' bags as ``(shot, label, count)`` triplets, coefficients)."""
    vocabulary: dict[str, int] = {}
    triplets = [(i, vocabulary.setdefault(label, len(vocabulary)), count)
                for i, bag in enumerate(kernel.bags_) for label, count in bag.items()]
    doc = {"params": _jsonable(kernel.get_params()), "vocabulary": list(vocabulary), "shots": len(kernel.bags_),
           "selected": [list(c) for c in kernel.selected_], "base": [kernel.base_mean_, kernel.base_std_]}
    arrays = {"bags": np.asarray(triplets, dtype=np.float64).reshape(-1, 3), "coef": kernel.coef_,
              "base_coef": kernel.base_coef_, "scale": kernel.scale_}
    return doc, arrays


def _kernel_from(doc: Mapping[str, Any], state: Mapping[str, np.ndarray], prefix: str) -> ShotKernelRidge:
    kernel = ShotKernelRidge(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc["params"].items()})
    vocabulary = list(doc["vocabulary"])
    bags: list[dict[str, int]] = [{} for _ in range(int(doc["shots"]))]
    for i, j, count in state[f"{prefix}.bags"]:
        bags[int(i)][vocabulary[int(j)]] = int(count)
    kernel.bags_ = bags
    kernel.coef_ = state[f"{prefix}.coef"]
    kernel.base_coef_ = state[f"{prefix}.base_coef"]
    kernel.scale_ = state[f"{prefix}.scale"]
    kernel.base_mean_, kernel.base_std_ = (float(v) for v in doc["base"])
    kernel.selected_ = [tuple(c) for c in doc["selected"]]
    if kernel.coef_.shape != (len(kernel.selected_), len(bags)):
        raise ValueError(f"{prefix}.coef has shape {kernel.coef_.shape} for {len(kernel.selected_)} picks of {len(bags)} shots")
    return kernel


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
    json.dumps(out)  # raises TypeError on anything that would not round-trip
    return out
