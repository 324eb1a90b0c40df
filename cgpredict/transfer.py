"""The GENNAPE transfer protocol: train on one labelled family, evaluate on the others.

Pipeline position: model → CG → features → predictor → **evaluation across families** (this
module) → ranking/search. Used by ``cgpredict eval`` and ``benchmarks/transfer.py``.

Protocol (per seed ``s``):

1. **Source**: the labelled NB-101 nets are split 80/10/10 (train/val/test, seeded by ``s``).
   The :class:`~cgpredict.predictor.Predictor` is trained on the train split; its contrastive
   encoder may additionally see ``n_unlabelled`` unlabelled NB-101 CGs sampled from the builder,
   and — in the *transductive* setting, reported separately — the target family's unlabelled CGs
   (``Predictor.fit(..., unlabelled=...)``, then ``Predictor.adapt`` re-fits the heads' input
   standardisation to the target CGs; the heads are still trained on the labelled source nets only).
   With ``shared_encoder`` the encoder is instead pre-trained once, label-free, on the
   ``n_unlabelled`` CGs alone (as GENNAPE pre-trains on 50k unlabelled NB-101 CGs) and shared by
   every seed, whose fit then trains the heads only; the transductive setting then continues that
   encoder's training on the target CGs plus as many unlabelled source CGs (``adapt_epochs``). The test
   split gives the in-family figures; the validation split is held out (unused by the default
   options, which do no FCM grid search). With ``bags = K > 1`` the predictor is a
   :class:`~cgpredict.bag.PredictorBag` of K fits on the same train split (seeds ``s``,
   ``s + 1000``, …), each cached on its own, so the ``K = 1`` fit is shared with unbagged runs.
2. **Zero-shot**: every labelled net of each target family/task is scored without any target label.
3. **k-shot fine-tuning** (default 50): ``shots`` target nets are drawn with a seed derived from
   ``(s, target)`` only — so they are the same nets for every method — the predictor is
   fine-tuned on them (``finetune_epochs`` epochs at ``finetune_batch``), and every method is
   evaluated on the remaining nets of the target.
4. **Leave-one-family-out** (optional): train on all labelled families except the target's
   (labels z-scored per family/task so that different label scales can be pooled), evaluate
   zero-shot on the target.

Every method is scored on exactly the same nets: the baselines FLOPs and params (of the CG),
each zero-cost proxy column of the data table (:attr:`Family.extra`), every ensemble member and
the GENNAPE ensemble. With the optional ``Proxy`` member in ``members`` the ensemble has seven
members, and the paper's six alone (same weights, renormalised) are reported as
:data:`PAPER_ENSEMBLE`. Metrics are those of :func:`cgpredict.metrics.evaluate`; ``mae`` is only
reported for methods that output accuracies (regression members and the ensemble's
:meth:`~cgpredict.predictor.Predictor.predict`), and is ``nan`` elsewhere.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from cgpredict.cg import CG
from cgpredict.metrics import DegenerateMetricWarning, evaluate
from cgpredict.models.contrastive import ContrastiveEncoder
from cgpredict.models.ensemble import combine, proxy_agreement_weights
from cgpredict.models.graph_data import flops_of
from cgpredict.predictor import MEMBERS, Predictor, accuracy_mean
from cgpredict.provenance import code_fingerprint, code_line

#: The metric columns, in table order.
METRIC_COLUMNS: tuple[str, ...] = ("spearman", "kendall_tau", "ndcg@10", "ndcg@50", "mae", "precision@1%",
                                   "precision@5%", "precision@10%", "best_rank@1%", "best_rank@5%",
                                   "best_rank@10%")
#: Default source (``family/task``).
SOURCE = "nasbench101/cifar10"
#: Every labelled family/task of the shared data (zero-shot targets by default).
ALL_TARGETS: tuple[str, ...] = (
    "nasbench201/cifar10", "nasbench201/cifar100", "nasbench201/ImageNet16-120", "nasbench301/cifar10",
    "transbench101_micro/class_scene", "transbench101_micro/class_object", "transbench101_micro/autoencoder",
    "transbench101_micro/normal", "transbench101_micro/jigsaw", "transbench101_micro/room_layout",
    "transbench101_micro/segmentsemantic")
#: Name of the ensemble row.
ENSEMBLE = "GENNAPE ensemble"
#: With the optional ``Proxy`` member, the ensemble of the paper's six members alone (same weights).
PAPER_ENSEMBLE = "GENNAPE ensemble, paper's 6 members"
#: With the ``Proxy`` member, zero-shot: the ensemble with label-free proxy-agreement weights.
AGREEMENT_ENSEMBLE = "GENNAPE ensemble, proxy-agreement weights"

#: Predictor options of the presets. ``full`` = the library defaults (paper sizes);
#: ``reduced`` = the same models with fewer epochs (fits a 2-core budget); ``quick`` = tiny
#: models for smoke tests.
PRESETS: dict[str, dict[str, Any]] = {
    "full": {"min_train_accuracy": 80.0},
    "reduced": {"min_train_accuracy": 80.0, "encoder": {"epochs": 6}, "regressor": {"epochs": 50},
                "pairwise": {"epochs": 15}, "kgnn": {"epochs": 30}},
    "quick": {"encoder": {"epochs": 3, "batch_size": 64, "branch_dim": 16},
              "regressor": {"epochs": 10, "hidden": 32}, "pairwise": {"epochs": 3, "hidden": 16},
              "kgnn": {"epochs": 3, "batch_size": 64}, "n_clusters": 3},
}


@dataclass
class TransferConfig:
    """Options of one protocol run (see the module docstring).

    Attributes:
        source: ``family/task`` of the labelled training family.
        targets: ``family/task`` of every target.
        seeds: number of seeds (``first_seed .. first_seed + seeds - 1``).
        first_seed: the first seed.
        settings: any of ``zero-shot``, ``few-shot``, ``transductive``, ``lofo``.
        shots: labelled target nets for fine-tuning.
        finetune_epochs, finetune_batch: fine-tuning schedule (the protocol's batch 1 by default).
        weight_folds: folds of the cross-fitted Kendall τ behind the fine-tuned ensemble weights
            (``Predictor.finetune``; 0 = in-sample τ).
        n_unlabelled: extra unlabelled source CGs (sampled from the builder) for the encoder/FCM.
        shared_encoder: pre-train the encoder once on the ``n_unlabelled`` CGs (``predictor``'s
            encoder options, e.g. its epochs) and share it across seeds (see the module docstring).
        adapt_epochs: with ``shared_encoder``, epochs of the transductive encoder adaptation.
        split: train/val/test fractions of the source family.
        bags: source predictors per seed (``1``: one :class:`Predictor`; ``K > 1``: a
            :class:`~cgpredict.bag.PredictorBag` of K fits with seeds ``s + 1000k`` on the same
            split, each cached on its own). Zero-shot and few-shot settings only.
        members: ensemble members.
        preset: ``full``, ``reduced`` or ``quick`` (:data:`PRESETS`); ``predictor`` overrides its entries.
        max_source, max_target: cap the nets used per family (``None`` = all; for smoke tests).
        lofo_sources: source families for ``lofo`` (``None`` = every labelled family/task in
            :data:`ALL_TARGETS` plus the source whose family differs from the target's).
        lofo_max: cap on the nets of each ``lofo`` source family/task (seeded subset; ``None`` =
            ``max_source``).
        data_dir: labelled-data folder (default ``$CGPREDICT_DATA``).
        cache_dir: if set, every fitted source (and ``lofo``) predictor is saved there, one
            sub-folder per hash of what determines the fit (options, seed, training nets and labels,
            package version), and loaded instead of refitted by a later run with the same inputs.
        scores_dir: if set, every evaluated ``(setting, target, seed)`` writes
            ``<setting>__<family>__<task>__seed<s>.npz`` with the labels and every method's
            per-net scores, for analyses beyond the report.
        progress: tqdm bars.
    """

    source: str = SOURCE
    targets: list[str] = field(default_factory=lambda: ["nasbench201/cifar10", "nasbench301/cifar10"])
    seeds: int = 5
    first_seed: int = 0
    settings: list[str] = field(default_factory=lambda: ["zero-shot", "few-shot"])
    shots: int = 50
    finetune_epochs: int = 100
    finetune_batch: int = 1
    weight_folds: int = 2
    n_unlabelled: int = 0
    shared_encoder: bool = False
    adapt_epochs: int = 5
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    bags: int = 1
    members: list[str] = field(default_factory=lambda: list(MEMBERS))
    preset: str = "full"
    predictor: dict[str, Any] = field(default_factory=dict)
    max_source: int | None = None
    max_target: int | None = None
    lofo_sources: list[str] | None = None
    lofo_max: int | None = None
    data_dir: str | None = None
    cache_dir: str | None = None
    scores_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        known = {"zero-shot", "few-shot", "transductive", "lofo"}
        bad = [s for s in self.settings if s not in known]
        if bad:
            raise ValueError(f"unknown setting(s) {bad}; choose from {sorted(known)}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")
        for spec in [self.source, *self.targets, *(self.lofo_sources or [])]:
            parse_target(spec)
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.bags < 1:
            raise ValueError(f"bags must be >= 1, got {self.bags}")
        if self.bags > 1 and {"transductive", "lofo"}.intersection(self.settings):
            raise ValueError("bags > 1 supports the zero-shot and few-shot settings only (transductive and lofo "
                             "fit their own predictor per target)")
        if self.bags > 1 and self.shared_encoder:
            raise ValueError("bags > 1 trains one encoder per bagged predictor; it cannot be combined with shared_encoder")
        if self.shots < 2:
            raise ValueError(f"shots must be >= 2, got {self.shots}")
        if self.finetune_batch < 1:
            raise ValueError(f"finetune_batch must be >= 1, got {self.finetune_batch}")
        if self.shared_encoder and self.n_unlabelled < 2:
            raise ValueError("shared_encoder pre-trains on the n_unlabelled CGs: set n_unlabelled (e.g. 20000)")
        if abs(sum(self.split) - 1.0) > 1e-6 or min(self.split) < 0:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {self.split}")

    def predictor_options(self, seed: int) -> dict[str, Any]:
        """Constructor options of :class:`Predictor` for ``seed``."""
        opts = copy.deepcopy(PRESETS[self.preset])
        for key, value in self.predictor.items():
            if isinstance(value, dict) and isinstance(opts.get(key), dict):
                opts[key] = {**opts[key], **value}
            else:
                opts[key] = value
        return {**opts, "members": list(self.members), "seed": seed, "progress": False}


def parse_target(spec: str) -> tuple[str, str | None]:
    """``"family/task"`` (or ``"family"``) → ``(family, task)``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a target must be 'family/task', got {spec!r}")
    family, _, task = spec.strip().partition("/")
    if not family:
        raise ValueError(f"a target must be 'family/task', got {spec!r}")
    return family, (task or None)


def _stable_seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "little")


def split_indices(n: int, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple[np.ndarray, ...]:
    """Seeded random ``(train, val, test)`` index arrays over ``n`` items (sizes rounded down,
    remainder to train)."""
    if n < 3:
        raise ValueError(f"cannot split {n} items into train/val/test")
    perm = np.random.default_rng(_stable_seed("split", seed)).permutation(n)
    n_val, n_test = int(math.floor(fractions[1] * n)), int(math.floor(fractions[2] * n))
    n_train = n - n_val - n_test
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def shot_indices(n: int, shots: int, seed: int, target: str) -> tuple[np.ndarray, np.ndarray]:
    """``(shots, rest)``: the fine-tuning nets of ``target`` for ``seed`` and the evaluation nets.

    Depends only on ``(n, shots, seed, target)``, so every method sees the same split.
    """
    if shots >= n:
        raise ValueError(f"target {target} has {n} nets, not enough for {shots}-shot fine-tuning plus evaluation")
    perm = np.random.default_rng(_stable_seed("shots", target, seed)).permutation(n)
    return np.sort(perm[:shots]), np.sort(perm[shots:])


# ---------------------------------------------------------------------------------------------- data
@dataclass
class LabelledSet:
    """CGs of one labelled family/task with labels and baseline columns."""

    name: str
    cgs: list[CG]
    labels: np.ndarray
    extra: dict[str, np.ndarray]

    def take(self, idx: np.ndarray) -> LabelledSet:
        """Subset by indices."""
        return LabelledSet(self.name, [self.cgs[i] for i in idx], self.labels[idx],
                           {k: v[idx] for k, v in self.extra.items()})


def load_labelled(spec: str, data_dir: str | None = None, limit: int | None = None, seed: int = 0,
                  progress: bool = True) -> LabelledSet:
    """Load ``family/task`` with its CGs (cached on disk); ``limit`` keeps a seeded random subset."""
    from cgpredict.datasets import load_family

    family, task = parse_target(spec)
    fam = load_family(family, task=task, data_dir=data_dir)
    if fam.labels is None:
        raise ValueError(f"{spec} has no labels")
    if limit is not None and limit < len(fam):
        idx = np.sort(np.random.default_rng(_stable_seed("limit", spec, seed)).permutation(len(fam))[:limit])
        fam = fam.subset(idx)
    return LabelledSet(spec, fam.cgs(progress=progress), np.asarray(fam.labels, dtype=np.float64), dict(fam.extra))


def baseline_scores(data: LabelledSet) -> dict[str, np.ndarray]:
    """Zero-cost baselines (higher = better): the CG's FLOPs and params and each proxy column of
    the table (missing values ranked last)."""
    out = {"FLOPs": flops_of(data.cgs), "params": np.array([float(cg.params) for cg in data.cgs])}
    for key, col in sorted(data.extra.items()):
        col = np.asarray(col, dtype=np.float64)
        if key in ("flops", "params") or not np.isfinite(col).any():
            continue
        finite = col[np.isfinite(col)]
        out[f"zc:{key}"] = np.where(np.isfinite(col), col, finite.min() - 1.0)
    return out


# ---------------------------------------------------------------------------------------------- training
def fit_predictor(options: dict[str, Any], cgs: Sequence[CG], labels: np.ndarray,
                  encoder_cgs: Sequence[CG] | None = None, encoder: ContrastiveEncoder | None = None) -> Predictor:
    """A fitted :class:`Predictor`; ``encoder_cgs`` are extra unlabelled CGs
    (``Predictor.fit(..., unlabelled=...)``: encoder, input standardisation and FCM). With a
    pre-trained ``encoder`` (copied, kept frozen) only the heads, input standardisation and FCM
    are fitted."""
    pred = Predictor(**options)
    if encoder is None:
        return pred.fit(cgs, labels, unlabelled=encoder_cgs)
    pred.encoder = copy.deepcopy(encoder)
    return pred.fit(cgs, labels, unlabelled=encoder_cgs, refit_encoder=False)


_ENCODERS: dict[str, ContrastiveEncoder] = {}


SHARED_ENCODER_SEED = 0
"""Seed of the ``shared_encoder`` pre-training: fixed, so that every seed of a run — and runs
split over ``first_seed`` ranges — share one encoder."""


def pretrained_encoder(config: TransferConfig, options: dict[str, Any], unlabelled: Sequence[CG]) -> ContrastiveEncoder:
    """The label-free encoder of ``shared_encoder``: trained on ``unlabelled`` with ``options``'
    encoder settings (seed :data:`SHARED_ENCODER_SEED`), kept in memory and in ``cache_dir`` for
    later runs."""
    from cgpredict import __version__

    kwargs = {**options.get("encoder", {}), "seed": SHARED_ENCODER_SEED}
    names = hashlib.sha256("\n".join(cg.name or "" for cg in unlabelled).encode()).hexdigest()[:16]
    doc = {"version": __version__, "encoder": kwargs, "n": len(unlabelled), "names": names}
    key = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if key in _ENCODERS:
        return _ENCODERS[key]
    enc = ContrastiveEncoder(**kwargs, progress=config.progress)
    path = Path(config.cache_dir) / f"encoder-{key}" if config.cache_dir else None
    if path is not None and (path / "encoder.json").is_file():
        enc.module.load_state_dict(torch.load(path / "encoder.pt", weights_only=True))
        enc.load_state(json.loads((path / "encoder.json").read_text())["state"])
        enc.module.eval()
    else:
        enc.fit(list(unlabelled))
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            torch.save(enc.module.state_dict(), path / "encoder.pt")
            (path / "encoder.json").write_text(json.dumps({**doc, "state": enc.state(), "history": enc.history_}))
    _ENCODERS[key] = enc
    return enc


def adapted_encoder(encoder: ContrastiveEncoder, target: Sequence[CG], unlabelled: Sequence[CG], epochs: int,
                    seed: int) -> ContrastiveEncoder:
    """A copy of ``encoder`` trained ``epochs`` more epochs on the ``target`` CGs plus as many
    unlabelled source CGs (seeded sample): the transductive setting with a shared encoder."""
    rng = np.random.default_rng(_stable_seed("transductive", seed))
    pick = rng.permutation(len(unlabelled))[: len(target)]
    enc = copy.deepcopy(encoder)
    enc.seed = seed
    return enc.fit(list(target) + [unlabelled[i] for i in pick], epochs=epochs)


def finetuned(pred: Predictor, cgs: Sequence[CG], labels: np.ndarray, epochs: int, batch: int,
              weight_folds: int = 2) -> Predictor:
    """A fine-tuned deep copy of ``pred`` (the original is left untouched)."""
    tuned = copy.deepcopy(pred)
    for part in getattr(tuned, "predictors", [tuned]):  # every predictor of a PredictorBag
        for model in part.models.values():
            if hasattr(model, "batch_size"):
                model.batch_size = batch
    return tuned.finetune(cgs, labels, epochs=epochs, weight_folds=weight_folds)


def predictor_scores(pred: Predictor, cgs: Sequence[CG], zero_shot: bool = False) -> tuple[dict[str, np.ndarray], set[str]]:
    """Scores of every member and of the ensemble, and the names whose scores are accuracies;
    ``zero_shot`` with a ``Proxy`` member adds :data:`AGREEMENT_ENSEMBLE`
    (:meth:`Predictor.reweight_by_proxy` on ``cgs``)."""
    scores = dict(pred.member_scores(cgs))
    regress = pred.accuracy_members()
    out = {name: scores[name] for name in pred.members}
    out[ENSEMBLE] = combine(scores, pred.weights)
    if "Proxy" in pred.members:
        out[PAPER_ENSEMBLE] = combine({k: v for k, v in scores.items() if k != "Proxy"}, pred.weights)
        if zero_shot and len(cgs) >= 10:
            agreed, _ = proxy_agreement_weights(scores, pred.weight_temperature)
            out[AGREEMENT_ENSEMBLE] = combine(scores, agreed)
    acc_units = set(regress)
    if regress:
        out[ENSEMBLE + " (predict)"] = accuracy_mean(scores, pred.weights, regress)
        acc_units.add(ENSEMBLE + " (predict)")
    return out, acc_units


def score_rows(labels: np.ndarray, scores: dict[str, np.ndarray], acc_units: set[str], kind: dict[str, str],
               **meta: Any) -> list[dict[str, Any]]:
    """One row per method with every metric (``mae`` nan unless the scores are accuracies)."""
    rows = []
    for name, values in scores.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateMetricWarning)
            metrics = evaluate(labels, values)
        if name not in acc_units:
            metrics["mae"] = float("nan")
        rows.append({**meta, "method": name, "kind": kind.get(name, "member"), **metrics})
    return rows


def _merge_predict_row(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put the ensemble's predict() MAE into the ensemble row (ranking metrics come from score())."""
    out, pending = [], {}
    for row in rows:
        if row["method"] == ENSEMBLE + " (predict)":
            pending[(row["setting"], row["target"], row["seed"])] = row["mae"]
        else:
            out.append(row)
    for row in out:
        if row["method"] == ENSEMBLE:
            row["mae"] = pending.get((row["setting"], row["target"], row["seed"]), float("nan"))
    return out


# ---------------------------------------------------------------------------------------------- protocol
def unlabelled_source_cgs(config: TransferConfig) -> list[CG]:
    """The ``n_unlabelled`` unlabelled source CGs (seeded sample of the source family's builder,
    converted in worker processes, disk-cached); ``[]`` when ``n_unlabelled`` is 0."""
    if not config.n_unlabelled:
        return []
    from cgpredict.datasets import load_family

    family, _ = parse_target(config.source)
    return load_family(family, n=config.n_unlabelled, seed=12345).cgs(
        progress=config.progress, workers=max(1, min(4, os.cpu_count() or 1)))


def run_transfer(config: TransferConfig, log: Callable[[str], None] | None = None,
                 data: dict[str, LabelledSet] | None = None,
                 unlabelled: Sequence[CG] | None = None) -> list[dict[str, Any]]:
    """Run the protocol; returns one dict per (setting, target, seed, method) with every metric
    plus ``kind`` (``baseline``/``member``/``ensemble``) and timing columns.

    ``data`` maps ``family/task`` names to already loaded sets (e.g. synthetic ones); names not
    in it are loaded from the labelled-data folder. ``unlabelled``: the unlabelled source CGs, if
    already loaded (default: ``n_unlabelled`` CGs sampled from the source family's builder).
    """
    say = log or (lambda _msg: None)
    data = dict(data or {})

    def get(spec: str, limit: int | None) -> LabelledSet:
        if spec not in data:
            data[spec] = load_labelled(spec, config.data_dir, limit, progress=config.progress)
        return data[spec]

    source = get(config.source, config.max_source)
    targets = {t: get(t, config.max_target) for t in config.targets}
    unlabelled = list(unlabelled) if unlabelled is not None else unlabelled_source_cgs(config)
    shared = (pretrained_encoder(config, config.predictor_options(SHARED_ENCODER_SEED), unlabelled)
              if config.shared_encoder else None)
    rows: list[dict[str, Any]] = []
    base_kind = {}
    seeds = range(config.first_seed, config.first_seed + config.seeds)
    jobs = [(s, st) for s in seeds for st in ("source", *config.settings)]
    bar = tqdm(total=len(jobs), desc="transfer protocol", disable=not config.progress)
    for seed in seeds:
        opts = config.predictor_options(seed)
        train, _val, test = split_indices(len(source.cgs), seed, config.split)
        tr = source.take(train)
        t0 = time.perf_counter()
        pred, cached = _cached_fit(config, opts, seed, tr.cgs, tr.labels, unlabelled, encoder=shared)
        if config.bags > 1:
            from cgpredict.bag import BAG_SEED_STRIDE, PredictorBag

            bagged = [pred]
            for k in range(1, config.bags):
                sub_seed = seed + BAG_SEED_STRIDE * k
                sub, sub_cached = _cached_fit(config, {**opts, "seed": sub_seed}, sub_seed, tr.cgs, tr.labels, unlabelled)
                bagged.append(sub)
                cached = cached and sub_cached
            pred = PredictorBag.from_predictors(bagged)
        fit_s = time.perf_counter() - t0
        say(f"seed {seed}: {'loaded' if cached else 'fitted'} on {len(tr.cgs)} {config.source} nets in {fit_s:.0f}s")
        te = source.take(test)
        scores, acc = predictor_scores(pred, te.cgs)
        base = baseline_scores(te)
        base_kind = {k: "baseline" for k in base}
        rows += score_rows(te.labels, {**base, **scores}, acc, {**base_kind, ENSEMBLE: "ensemble",
                                                                PAPER_ENSEMBLE: "ensemble"},
                           setting="in-family test", target=config.source, seed=seed, n_eval=len(te.cgs),
                           fit_s=fit_s)
        bar.update()
        for setting in config.settings:
            for name, tgt in targets.items():
                t0 = time.perf_counter()
                if setting == "zero-shot":
                    ev, model = tgt, pred
                elif setting == "few-shot":
                    shots, rest = shot_indices(len(tgt.cgs), config.shots, seed, name)
                    st = tgt.take(shots)
                    model = finetuned(pred, st.cgs, st.labels, config.finetune_epochs, config.finetune_batch,
                                      config.weight_folds)
                    ev = tgt.take(rest)
                elif setting == "transductive":
                    enc = None if shared is None else adapted_encoder(shared, tgt.cgs, unlabelled,
                                                                      config.adapt_epochs, seed)
                    model = fit_predictor(_learned_options(opts), tr.cgs, tr.labels, unlabelled + list(tgt.cgs),
                                          encoder=enc).adapt(tgt.cgs)
                    if "Proxy" in opts["members"] and "Proxy" not in model.members:
                        model.add_proxy_member(opts.get("proxy"), opts.get("zero_cost", ()))
                    ev = tgt
                else:  # lofo
                    model = _fit_lofo(config, name, opts, seed, data)
                    ev = tgt
                scores, acc = predictor_scores(model, ev.cgs, zero_shot=setting != "few-shot")
                base = baseline_scores(ev)
                label = f"{config.shots}-shot" if setting == "few-shot" else setting
                _dump_scores(config, label, name, seed, ev.labels, {**base, **scores},
                             tuned=model if setting == "few-shot" else None,
                             shot_labels=st.labels if setting == "few-shot" else None)
                rows += score_rows(ev.labels, {**base, **scores}, acc, {**base_kind, **{k: "baseline" for k in base},
                                                                         ENSEMBLE: "ensemble", PAPER_ENSEMBLE: "ensemble",
                                                                         AGREEMENT_ENSEMBLE: "ensemble"},
                                   setting=label, target=name, seed=seed, n_eval=len(ev.cgs),
                                   fit_s=time.perf_counter() - t0)
                say(f"seed {seed}: {label} on {name} done in {time.perf_counter() - t0:.0f}s")
            bar.update()
    bar.close()
    return _merge_predict_row(rows)


def _learned_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The options that determine the trained members: with ``proxy_inputs=False`` the ``Proxy``
    member and its proxies do not touch training, so they are left out (and added after the fit)."""
    if opts.get("proxy_inputs", True) or "Proxy" not in opts.get("members", ()):
        return opts
    learned = {k: v for k, v in opts.items() if k not in ("proxy", "zero_cost", "proxy_inputs")}
    learned["members"] = [m for m in opts["members"] if m != "Proxy"]
    return learned


def _fit_key(config: TransferConfig, opts: dict[str, Any], seed: int, cgs: Sequence[CG], labels: np.ndarray,
             n_unlabelled: int, tag: str, shared: bool = False) -> str:
    """Hash of everything that determines a fitted predictor of ``seed``: options, seed, the
    training nets (names) and labels, ``tag`` (its training sets), the package version and the
    code (:func:`~cgpredict.provenance.code_fingerprint`: a code change refits instead of reusing a
    fit the old code made). Not the torch thread count: fits made with another count are reused."""
    from cgpredict import __version__

    data = hashlib.sha256(np.asarray(labels, dtype=np.float64).tobytes())
    data.update("\n".join(cg.name or "" for cg in cgs).encode())
    doc = {"version": __version__, "code": code_fingerprint(), "options": opts, "seed": seed,
           "source": config.source, "split": config.split, "max_source": config.max_source,
           "n_train": len(cgs), "n_unlabelled": n_unlabelled,
           "data": data.hexdigest()[:16], "tag": tag, **({"shared_encoder": True} if shared else {})}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cached_fit(config: TransferConfig, opts: dict[str, Any], seed: int, cgs: Sequence[CG], labels: np.ndarray,
                unlabelled: Sequence[CG], tag: str = "source",
                encoder: ContrastiveEncoder | None = None) -> tuple[Predictor, bool]:
    """``(predictor, loaded)``: the predictor of ``seed`` trained on ``cgs``/``labels`` (``tag``:
    ``source`` for the source split, ``lofo`` for the leave-one-family-out sets; ``encoder``: the
    shared pre-trained encoder, if any).

    The trained members come from ``config.cache_dir`` when a fit with the same inputs was saved
    there, else they are fitted (and saved when caching). A ``Proxy`` member that does not feed
    the heads (``proxy_inputs=False``) is training-free and is added afterwards, so runs that differ
    only in their proxies share the cached fit.
    """
    learned = _learned_options(opts)
    path = None
    if config.cache_dir:
        key = _fit_key(config, learned, seed, cgs, labels, len(unlabelled), tag, shared=encoder is not None)
        prefix = "" if tag == "source" else f"{tag}-"
        path = Path(config.cache_dir) / f"{prefix}seed{seed}-{key}"
    loaded = path is not None and (path / "config.json").is_file()
    if loaded:
        pred = Predictor.load(path, progress=False)
    else:
        pred = fit_predictor(learned, cgs, labels, unlabelled, encoder=encoder)
        if path is not None:
            pred.save(path)
    if learned is not opts:
        pred.add_proxy_member(opts.get("proxy"), opts.get("zero_cost", ()))
    return pred, loaded


def _dump_scores(config: TransferConfig, setting: str, target: str, seed: int, labels: np.ndarray,
                 scores: dict[str, np.ndarray], tuned: Predictor | None = None,
                 shot_labels: np.ndarray | None = None) -> None:
    """Write the per-net scores of one evaluation to ``config.scores_dir`` (if set).

    After fine-tuning (``tuned``, ``shot_labels``) also the fine-tuning nets' labels, the
    members' cross-fitted held-out scores on them and their folds (``shot_score_<i>`` in the
    order of ``shot_names``, ``shot_folds``), and the members' τ and weights — what any rule
    that weighs members from the fine-tuning labels needs, so rules can be compared offline."""
    if not config.scores_dir:
        return
    out = Path(config.scores_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{setting}__{target.replace('/', '__')}__seed{seed}"
    extra: dict[str, np.ndarray] = {}
    if tuned is not None and shot_labels is not None and tuned.crossfit_folds_ is not None:
        names = list(tuned.crossfit_scores_)
        extra = {"shot_labels": np.asarray(shot_labels, dtype=np.float64), "shot_names": np.array(names),
                 "shot_folds": tuned.crossfit_folds_,
                 "member_taus": np.array([tuned.taus_.get(n, np.nan) for n in names]),
                 "member_weights": np.array([tuned.weights.get(n, np.nan) for n in names]),
                 **{f"shot_score_{i}": np.asarray(tuned.crossfit_scores_[n], dtype=np.float64)
                    for i, n in enumerate(names)}}
    np.savez(out / f"{stem}.npz", labels=np.asarray(labels, dtype=np.float64), names=np.array(list(scores)),
             **{f"score_{i}": np.asarray(v, dtype=np.float64) for i, v in enumerate(scores.values())}, **extra)


def _fit_lofo(config: TransferConfig, target: str, opts: dict[str, Any], seed: int,
              data: dict[str, LabelledSet]) -> Predictor:
    """A predictor trained on every labelled family except the target's (labels z-scored per set)."""
    family, _ = parse_target(target)
    sources = config.lofo_sources or [s for s in (config.source, *ALL_TARGETS)
                                      if s in data or _has_table(s, config.data_dir)]
    cgs: list[CG] = []
    ys: list[np.ndarray] = []
    cap = config.lofo_max if config.lofo_max is not None else config.max_source
    for spec in dict.fromkeys(sources):
        if parse_target(spec)[0] == family:
            continue
        if spec not in data:
            data[spec] = load_labelled(spec, config.data_dir, progress=config.progress)
        part = data[spec]
        if cap is not None and cap < len(part.cgs):
            rng = np.random.default_rng(_stable_seed("lofo", spec, seed))
            part = part.take(np.sort(rng.permutation(len(part.cgs))[:cap]))
        cgs += part.cgs
        ys.append((part.labels - part.labels.mean()) / (part.labels.std() or 1.0))
    if not cgs:
        raise ValueError(f"no labelled family other than {family} to train a leave-one-family-out predictor")
    y = np.concatenate(ys) * 10.0 + 50.0  # accuracy-like scale: positive, as the FLOPs transform expects
    lofo_opts = {**opts, "min_train_accuracy": None}
    return _cached_fit(config, lofo_opts, seed, cgs, y, [], tag="lofo")[0]


def _has_table(spec: str, data_dir: str | None = None) -> bool:
    """Whether the labelled table of ``spec`` exists in the data folder."""
    try:
        from cgpredict.datasets import registry

        family, task = parse_target(spec)
        root = registry.resolve_data_dir(data_dir)
        return root is not None and (root / registry.family_module(family).data_file(task)).is_file()
    except Exception:  # noqa: BLE001 - an unavailable family simply is not a source
        return False


# ---------------------------------------------------------------------------------------------- reporting
def summarize(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Group rows by ``(setting, target)``; per method the mean and std over seeds of each metric."""
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["target"]), {}).setdefault(row["method"], []).append(row)
    order = {"baseline": 0, "member": 1, "ensemble": 2}
    out = {}
    for key, methods in groups.items():
        table = []
        for method, rs in methods.items():
            entry: dict[str, Any] = {"method": method, "kind": rs[0]["kind"], "seeds": len(rs),
                                     "n_eval": rs[0]["n_eval"]}
            for col in METRIC_COLUMNS:
                vals = np.array([r[col] for r in rs], dtype=np.float64)
                good = vals[np.isfinite(vals)]
                entry[col] = (float(good.mean()) if good.size else float("nan"),
                              float(good.std()) if good.size else float("nan"))
            table.append(entry)
        table.sort(key=lambda e: (order.get(e["kind"], 3), e["method"]))
        out[key] = table
    return out


def headline(rows: Sequence[dict[str, Any]], metric: str = "spearman") -> list[str]:
    """A markdown summary table: per (setting, target) the ``metric`` of the ensemble (and, with the
    ``Proxy`` member, of the paper's six members and of the proxy-agreement weights), the best
    member, FLOPs and the best zero-cost proxy column (mean ± std over seeds)."""
    extra = [(name, label) for name, label in ((PAPER_ENSEMBLE, "paper's 6 members"),
                                               (AGREEMENT_ENSEMBLE, "proxy-agreement weights"))
             if any(r["method"] == name for r in rows)]
    lines = [f"## Summary ({metric}, mean ± std over seeds)", "",
             "| setting | target | GENNAPE ensemble | " + "".join(f"{label} | " for _, label in extra)
             + "best member | FLOPs | best zero-cost proxy |", "|---|---|---|---|---|---|" + "---|" * len(extra)]
    for (setting, target), table in summarize(rows).items():
        by = {e["method"]: e for e in table}

        def best(kind: str, prefix: str = "") -> str:
            cands = [e for e in table if e["kind"] == kind and e["method"].startswith(prefix)
                     and np.isfinite(e[metric][0]) and e["method"] != "FLOPs"]
            if not cands:
                return "—"
            e = max(cands, key=lambda e: e[metric][0])
            return f"{e['method']} {_fmt(*e[metric], 3)}"

        def cell(name: str) -> str:
            return _fmt(*by[name][metric], 3) if name in by else "—"

        more = "".join(f"{cell(name)} | " for name, _ in extra)
        lines.append(f"| {setting} | {target} | {cell(ENSEMBLE)} | {more}{best('member')} | {cell('FLOPs')} | "
                     f"{best('baseline', 'zc:')} |")
    return lines


def _fmt(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_markdown(rows: Sequence[dict[str, Any]], config: TransferConfig | None = None, command: str | None = None,
                notes: Sequence[str] = ()) -> str:
    """Markdown report: command, configuration, the code that ran it (:func:`~cgpredict.provenance.code_line`),
    then one table per (setting, target)."""
    lines = ["# GENNAPE transfer protocol", ""]
    if command:
        lines += ["Reproduce with:", "", "```", command, "```", ""]
    if config is not None:
        cfg = asdict(config)
        for key in ("progress", "cache_dir", "scores_dir"):
            cfg.pop(key, None)
        lines += ["Configuration: " + ", ".join(f"`{k}={v}`" for k, v in cfg.items()), ""]
    lines += [code_line(), ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += ["Mean ± std over seeds. spearman/kendall_tau/ndcg/precision: higher is better; "
              "mae (accuracy units, only for methods that predict accuracy) and best_rank (percentile of "
              "the best true rank among the predicted top-K%): lower is better.", ""]
    lines += headline(rows) + [""]
    head = ["method", "kind", *METRIC_COLUMNS]
    for (setting, target), table in summarize(rows).items():
        n_eval = table[0]["n_eval"] if table else 0
        lines += [f"## {setting} — {target} ({n_eval} nets evaluated, {table[0]['seeds']} seed(s))", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in table:
            cells = [e["method"], e["kind"]]
            for col in METRIC_COLUMNS:
                digits = 2 if col in ("mae",) or col.startswith("best_rank") else 3
                cells.append(_fmt(*e[col], digits))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
