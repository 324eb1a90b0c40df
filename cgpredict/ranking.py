"""Rank a family's networks with a trained predictor; per-model predictions (or ranking scores).

Pipeline position: model → CG → features → predictor → **ranking** (this module) → search.

:func:`rank_family` ranks a :class:`~cgpredict.datasets.Family` best first (with SRCC, Kendall τ
and NDCG@10 when it is labelled); :func:`load_ranked_family` picks the labelled table when there is
one, else samples nets; :func:`predict_rows` gives per-model results; :func:`format_table` prints
rows as an aligned text table. The ``cgpredict rank`` and ``cgpredict predict`` commands and the
demo print what these return; :class:`GeneralistScorer` is ``cgpredict search``'s scorer for a
generalist (scores against one fixed training group, comparable across batches).

Both predictor kinds work, told apart by duck typing on :func:`predicts_accuracy` (a
``predicts_accuracy`` attribute, ``True`` when absent):

* the generalist (:class:`~cgpredict.generalist.GeneralistPredictor`, the default) gives ranking
  scores of the set (``score`` and ``rank`` columns; no accuracy, no OOD check; ``use_proxies=False``
  runs no network);
* the GENNAPE :class:`~cgpredict.predictor.Predictor` / ``PredictorBag`` also gives the predicted
  accuracy and the FCM out-of-distribution columns.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG
    from cgpredict.datasets import Family
    from cgpredict.predictor import Predictor

__all__ = ["DEFAULT_N", "SCORE_NOTE", "GeneralistScorer", "coverage_line", "format_table", "generalist_columns",
           "load_ranked_family", "ood_text", "predict_rows", "predicts_accuracy", "rank_family"]

#: Nets sampled by :func:`load_ranked_family` when a family has no labels and ``n`` is not given.
DEFAULT_N = 100

#: The one-line note printed under a generalist's scores.
SCORE_NOTE = ("note: scores rank the networks within the given set (higher = predicted better); "
              "they are not accuracies")


def coverage_line(predictor: Any, cgs: Sequence[CG], raw: np.ndarray | None = None) -> str:
    """One line naming the generalist's training group that covers ``cgs`` best
    (:meth:`~cgpredict.generalist.GeneralistPredictor.ood`), with a warning when even it covers
    less than :data:`~cgpredict.generalist.model.OOD_COVERAGE` of their graph-column values. ``raw``: their
    :meth:`~cgpredict.generalist.GeneralistPredictor.columns`, when already computed."""
    report = predictor.ood(list(cgs), raw=raw)
    line = (f"closest training group: {report['nearest_group']} ({report['coverage']:.0%} of the nets' graph "
            "columns inside its range)")
    if report["flag"]:
        line += ("; these nets are unlike every training family, so the ranking extrapolates "
                 "(fine-tune with `cgpredict finetune` on a few labelled nets of their family)")
    return line


def predicts_accuracy(predictor: Any) -> bool:
    """``True`` for a predictor of accuracies with an OOD check (GENNAPE ``Predictor``/``PredictorBag``),
    ``False`` for a ranker of sets (the generalist); read from its ``predicts_accuracy`` attribute."""
    return bool(getattr(predictor, "predicts_accuracy", True))


def _check_options(predictor: Any, use_proxies: bool | None, adapt: bool = False, proxy_weights: bool = False,
                   raw: np.ndarray | None = None) -> None:
    """Refuse options the predictor kind does not have (``ValueError`` naming them)."""
    if predicts_accuracy(predictor):
        for name, value in (("use_proxies", use_proxies), ("raw", raw)):
            if value is not None:
                raise ValueError(f"{name} applies to the generalist only (GeneralistPredictor); "
                                 "the GENNAPE Predictor reads no proxy bank")
    elif adapt or proxy_weights:
        name = "adapt" if adapt else "proxy_weights"
        raise ValueError(f"{name} applies to the GENNAPE Predictor only, not to the generalist")


def _check_rows(raw: np.ndarray | None, n: int) -> None:
    """Refuse precomputed columns that are not one row per CG (``ValueError`` with both counts)."""
    if raw is None:
        return
    if np.ndim(raw) != 2 or len(raw) != n:
        raise ValueError(f"raw holds {len(raw) if np.ndim(raw) else 0} row(s) of columns for {n} CG(s); "
                         "expected one row per CG (GeneralistPredictor.columns of the same CGs)")


def generalist_columns(predictor: Any, cgs: Sequence[CG], use_proxies: bool | None = None,
                       executor: Any = None) -> np.ndarray:
    """A generalist's :meth:`~cgpredict.generalist.GeneralistPredictor.columns` of ``cgs`` (what its
    ranking and its coverage line both read); ``executor``, when given, runs the proxy bank on the
    nets missing from its cache instead of the predictor's own ``executor``."""
    if executor is None:
        return predictor.columns(list(cgs), use_proxies=use_proxies)
    before, predictor.executor = predictor.executor, executor
    try:
        return predictor.columns(list(cgs), use_proxies=use_proxies)
    finally:
        predictor.executor = before


def _set_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based place of each score in the set, best (highest) first; ties keep the given order."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


def load_ranked_family(family: str, task: str | None = None, n: int | None = None, seed: int = 0,
                       data_dir: str | None = None) -> Family:
    """The labelled family if its table is available (seeded subset of ``n``), else ``n``
    (default :data:`DEFAULT_N`) sampled unlabelled nets."""
    from cgpredict.datasets import load_family
    from cgpredict.datasets.registry import check_task, resolve_data_dir

    task = check_task(family, task)
    if task is not None and resolve_data_dir(data_dir) is not None:
        try:
            fam = load_family(family, task=task, data_dir=data_dir)
        except FileNotFoundError:
            fam = None
        if fam is not None:
            if n is not None and n < len(fam):
                pick = np.sort(np.random.default_rng(seed).choice(len(fam), n, replace=False))
                fam = fam.subset(pick)
            return fam
    return load_family(family, task=task, n=DEFAULT_N if n is None else n, seed=seed)


def _ood_columns(predictor: Predictor, cgs: Sequence[CG], name: str = "target family") -> dict[str, np.ndarray]:
    """``predictor.ood`` without its warning; nan memberships/distances and no flag for a
    predictor without FCM members."""
    from cgpredict.models.fcm import OutOfDistributionWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDistributionWarning)
            return predictor.ood(list(cgs), name=name)
    except RuntimeError:  # a checkpoint without FCM members
        nan = np.full(len(cgs), np.nan)
        return {"max_membership": nan, "centroid_distance": nan, "flag": np.zeros(len(cgs), dtype=bool)}


def rank_family(predictor: Any, fam: Family, progress: bool = True, adapt: bool = False,
                proxy_weights: bool = False, executor: Any = None, use_proxies: bool | None = None,
                cgs: Sequence[CG] | None = None,
                raw: np.ndarray | None = None) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Rank ``fam`` with ``predictor``: rows best first and, if labelled, metrics ``srcc``,
    ``kendall_tau``, ``ndcg@10`` of the score.

    Rows of a generalist: ``rank``, ``arch``, ``score``, ``mmacs``, ``label`` (``use_proxies=False``:
    its graph-only ranker, no network run). Rows of a GENNAPE predictor also hold
    ``predicted_acc``, ``ood`` and ``max_membership``; ``adapt`` first calls ``predictor.adapt`` on
    the family's CGs (label-free, transductive zero-shot); ``proxy_weights`` weights the members
    by agreement with the ``Proxy`` member on them (``predictor.reweight_by_proxy``, also
    label-free). ``executor`` (an :mod:`cgpredict.executors` executor or a spec such as
    ``"ray:auto"``) converts the nets not yet in the CG cache there (and, for a generalist, runs the
    proxy bank on the nets not yet in its cache). ``cgs``: the family's CGs, when already converted;
    ``raw``: a generalist's :meth:`~cgpredict.generalist.GeneralistPredictor.columns` of them, when
    already computed (then no network is run here).

    Raises:
        ValueError: an option the predictor kind does not have (``use_proxies`` with GENNAPE,
            ``adapt``/``proxy_weights`` with the generalist).
    """
    from cgpredict.metrics import kendall_tau, ndcg_at_k, spearman

    _check_options(predictor, use_proxies, adapt, proxy_weights, raw)
    cgs = list(cgs) if cgs is not None else fam.cgs(progress=progress, executor=executor)
    if len(cgs) != len(fam):
        raise ValueError(f"{len(cgs)} CGs given for the {len(fam)} nets of {fam.name}")
    _check_rows(raw, len(cgs))
    accuracy = predicts_accuracy(predictor)
    if not accuracy:
        if raw is None:
            raw = generalist_columns(predictor, cgs, use_proxies, executor)
        score = np.asarray(predictor.predict(cgs, use_proxies=use_proxies, raw=raw), dtype=float)
    else:
        if adapt:
            predictor.adapt(cgs)
        if proxy_weights:
            predictor.reweight_by_proxy(cgs)
        score = predictor.score(cgs)
        pred = predictor.predict(cgs)
        ood = _ood_columns(predictor, cgs, name=fam.name)
    order = np.argsort(-score, kind="stable")
    rows = []
    for place, i in enumerate(order, start=1):
        row: dict[str, Any] = {"rank": place, "arch": fam.key(int(i))}
        if accuracy:
            row["predicted_acc"] = float(pred[i])
        row.update({"score": float(score[i]), "mmacs": cgs[i].flops / 1e6})
        if accuracy:
            row.update({"ood": bool(ood["flag"][i]), "max_membership": float(ood["max_membership"][i])})
        row["label"] = float(fam.labels[i]) if fam.labels is not None else float("nan")
        rows.append(row)
    metrics: dict[str, float] = {}
    if fam.labels is not None:
        y = np.asarray(fam.labels, dtype=np.float64)
        metrics = {"srcc": spearman(y, score), "kendall_tau": kendall_tau(y, score), "ndcg@10": ndcg_at_k(y, score, 10)}
    return rows, metrics


def predict_rows(predictor: Any, cgs: Sequence[CG], names: Sequence[str],
                 use_proxies: bool | None = None, raw: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One dict per CG, in the given order.

    A generalist gives ``model``, ``score``, ``rank`` (place within these CGs, 1 = best) and
    ``mmacs`` (one CG alone is placed against the stored training group nearest in FLOPs;
    ``use_proxies=False``: no network run; ``raw``: the generalist's columns of ``cgs``, when
    already computed). A GENNAPE predictor gives ``model``,
    ``predicted_acc``, ``mmacs``, ``max_membership``, ``centroid_distance`` and ``ood`` (bool).

    Raises:
        ValueError: ``use_proxies`` given with a GENNAPE predictor.
    """
    _check_options(predictor, use_proxies, raw=raw)
    cgs = list(cgs)
    _check_rows(raw, len(cgs))
    if not predicts_accuracy(predictor):
        score = np.asarray(predictor.predict(cgs, use_proxies=use_proxies, raw=raw), dtype=float)
        ranks = _set_ranks(score)
        return [{"model": name, "score": float(score[i]), "rank": int(ranks[i]), "mmacs": cg.flops / 1e6}
                for i, (name, cg) in enumerate(zip(names, cgs))]
    pred = predictor.predict(cgs)
    ood = _ood_columns(predictor, cgs)
    return [{"model": name, "predicted_acc": float(pred[i]), "mmacs": cg.flops / 1e6,
             "max_membership": float(ood["max_membership"][i]), "centroid_distance": float(ood["centroid_distance"][i]),
             "ood": bool(ood["flag"][i])} for i, (name, cg) in enumerate(zip(names, cgs))]


class GeneralistScorer:
    """A generalist as a batch scorer for :func:`~cgpredict.search.search_cg`, anchored on a start
    (what ``cgpredict search`` uses).

    Every batch is scored against one stored training group (:meth:`anchor` picks the one nearest
    in FLOPs to the start network), so a score does not depend on which candidates share its batch.

    Args:
        model: a fitted :class:`~cgpredict.generalist.GeneralistPredictor`.
        use_proxies: run the proxy bank (``False``: the graph-only ranker).
    """

    def __init__(self, model: Any, use_proxies: bool = True) -> None:
        self.model = model
        self.use_proxies = use_proxies
        self.reference: str | None = None

    def anchor(self, start: CG) -> str:
        """Fix the reference group to the stored one nearest to ``start`` (a CG); returns its name."""
        self.reference = self.model.nearest_group(self.model.columns([start], use_proxies=self.use_proxies))
        return self.reference

    def __call__(self, cgs: Sequence[CG]) -> np.ndarray:
        """Scores of ``cgs`` against the anchored group (higher = predicted better)."""
        if self.reference is None:
            raise RuntimeError("GeneralistScorer.anchor(start) must be called before scoring")
        return self.model.predict(list(cgs), use_proxies=self.use_proxies, reference=self.reference)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Aligned text table: ``columns`` are ``(key, header, format spec)``; text left, numbers right."""
    cells = [[format(row[key], spec) if spec and isinstance(row[key], (int, float)) else str(row[key])
              for key, _, spec in columns] for row in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h, _) in enumerate(columns)]
    numeric = [bool(spec) for _, _, spec in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line([h for _, h, _ in columns]), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    return "\n".join(out)


def ood_text(row: dict[str, Any]) -> str:
    """``yes`` / ``no`` for the OOD flag, ``n/a`` when the distance is unknown (NaN: no FCM member)
    or the row has no OOD check (a generalist's)."""
    if "ood" not in row:
        return "n/a"
    distance = row.get("centroid_distance", row.get("max_membership", float("nan")))
    if distance is None or distance != distance:
        return "n/a"
    return "yes" if row["ood"] else "no"
