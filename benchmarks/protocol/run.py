"""The GENNAPE transfer protocol's loop: fit per seed (cached), then score every setting and target.

Pipeline position: benchmark around model → CG → features → predictor → **evaluation across
families**. The steps (splits, scoring, fine-tuning) are :mod:`cgpredict.evaluation`'s; this module
adds what is specific to the benchmark: targets loaded by name from the labelled data,
``bags``, the transductive and leave-one-family-out settings, the shared encoder, the fit cache
(:mod:`protocol.fits`) and the per-net score dumps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgpredict.datasets import Family, load_family
from cgpredict.evaluation import evaluate_model, few_shot, load_labelled, source_split, subset_indices
from cgpredict.fileio import atomic_writer
from cgpredict.quiet import progress_bar

from . import fits
from .config import TransferConfig, has_table, labelled_targets, parse_target
from .fits import SHARED_ENCODER_SEED, adapted_encoder, cached_fit, learned_options, pretrained_encoder

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG
    from cgpredict.predictor import Predictor


def unlabelled_source_cgs(config: TransferConfig) -> list[CG]:
    """The ``n_unlabelled`` unlabelled source CGs (seeded sample of the source family's builder,
    converted in worker processes, disk-cached); ``[]`` when ``n_unlabelled`` is 0."""
    if not config.n_unlabelled:
        return []
    family, _ = parse_target(config.source)
    return load_family(family, n=config.n_unlabelled, seed=12345).cgs(
        progress=config.progress, workers=max(1, min(4, os.cpu_count() or 1)))


def run_transfer(config: TransferConfig, log: Callable[[str], None] | None = None,
                 data: dict[str, Family] | None = None,
                 unlabelled: Sequence[CG] | None = None) -> list[dict[str, Any]]:
    """Run the protocol; returns one dict per (setting, target, seed, method) with every metric
    plus ``kind`` (``baseline``/``member``/``ensemble``) and timing columns.

    ``data`` maps ``family/task`` names to already loaded labelled families (e.g.
    :meth:`Family.from_cgs <cgpredict.datasets.Family.from_cgs>` of synthetic CGs); names not in it
    are loaded from the labelled-data folder. ``unlabelled``: the unlabelled source CGs, if already
    loaded (default: ``n_unlabelled`` CGs sampled from the source family's builder).
    """
    say = log or (lambda _msg: None)
    data = {name: fam.with_cgs(progress=config.progress) for name, fam in (data or {}).items()}

    def get(spec: str, limit: int | None) -> Family:
        if spec not in data:
            data[spec] = load_labelled(spec, config.data_dir, limit, progress=config.progress)
        return data[spec]

    source = get(config.source, config.max_source)
    targets = {t: get(t, config.max_target) for t in config.targets}
    unlabelled = list(unlabelled) if unlabelled is not None else unlabelled_source_cgs(config)
    shared = (pretrained_encoder(config, config.predictor_options(SHARED_ENCODER_SEED), unlabelled)
              if config.shared_encoder else None)
    rows: list[dict[str, Any]] = []
    seeds = range(config.first_seed, config.first_seed + config.seeds)
    bar = progress_bar(total=len(seeds) * (1 + len(config.settings)), desc="transfer protocol", progress=config.progress)
    for seed in seeds:
        opts = config.predictor_options(seed)
        tr, _val, te = source_split(source, seed, config.split)
        t0 = time.perf_counter()
        pred, cached = _source_fit(config, opts, seed, tr, unlabelled, shared)
        fit_s = time.perf_counter() - t0
        say(f"seed {seed}: {'loaded' if cached else 'fitted'} on {len(tr)} {config.source} nets in {fit_s:.0f}s")
        rows += evaluate_model(pred, te, setting="in-family test", target=config.source, seed=seed,
                               n_eval=len(te), fit_s=fit_s)[0]
        bar.update()
        for setting in config.settings:
            for name, tgt in targets.items():
                t0 = time.perf_counter()
                shot_labels = None
                if setting == "zero-shot":
                    ev, model = tgt, pred
                elif setting == "few-shot":
                    model, shot_nets, ev = few_shot(pred, tgt, config.shots, seed, config.finetune_epochs,
                                                    config.finetune_batch, config.weight_folds, name=name)
                    shot_labels = shot_nets.labels
                elif setting == "transductive":
                    model, ev = _transductive(config, opts, seed, tr, tgt, unlabelled, shared), tgt
                else:  # lofo
                    model, ev = _fit_lofo(config, name, opts, seed, data), tgt
                label = f"{config.shots}-shot" if setting == "few-shot" else setting
                scored, scores = evaluate_model(model, ev, zero_shot=setting != "few-shot", setting=label,
                                                target=name, seed=seed, n_eval=len(ev),
                                                fit_s=time.perf_counter() - t0)
                rows += scored
                dump_scores(config, label, name, seed, ev.labels, scores,
                            tuned=model if shot_labels is not None else None, shot_labels=shot_labels)
                say(f"seed {seed}: {label} on {name} done in {time.perf_counter() - t0:.0f}s")
            bar.update()
    bar.close()
    return rows


def _source_fit(config: TransferConfig, opts: dict[str, Any], seed: int, tr: Family, unlabelled: list[CG],
                shared: Any) -> tuple[Predictor, bool]:
    """The seed's source predictor (a :class:`~cgpredict.predictor.PredictorBag` with ``bags > 1``) and
    whether every fit came from the cache."""
    cgs = tr.cgs(progress=False)
    pred, cached = cached_fit(config, opts, seed, cgs, tr.labels, unlabelled, encoder=shared)
    if config.bags == 1:
        return pred, cached
    from cgpredict.predictor import BAG_SEED_STRIDE, PredictorBag

    bagged = [pred]
    for k in range(1, config.bags):
        sub_seed = seed + BAG_SEED_STRIDE * k
        sub, sub_cached = cached_fit(config, {**opts, "seed": sub_seed}, sub_seed, cgs, tr.labels, unlabelled)
        bagged.append(sub)
        cached = cached and sub_cached
    return PredictorBag.from_predictors(bagged), cached


def _transductive(config: TransferConfig, opts: dict[str, Any], seed: int, tr: Family, tgt: Family,
                  unlabelled: list[CG], shared: Any) -> Predictor:
    """A predictor whose encoder (and input standardisation) also saw the target's unlabelled CGs."""
    target_cgs = tgt.cgs(progress=False)
    enc = None if shared is None else adapted_encoder(shared, target_cgs, unlabelled, config.adapt_epochs, seed)
    model = fits.fit_predictor(learned_options(opts), tr.cgs(progress=False), tr.labels, unlabelled + target_cgs,
                          encoder=enc).adapt(target_cgs)
    if "Proxy" in opts["members"] and "Proxy" not in model.members:
        model.add_proxy_member(opts.get("proxy"), opts.get("zero_cost", ()))
    return model


def _fit_lofo(config: TransferConfig, target: str, opts: dict[str, Any], seed: int,
              data: dict[str, Family]) -> Predictor:
    """A predictor trained on every labelled family except the target's (labels z-scored per set)."""
    family, _ = parse_target(target)
    sources = config.lofo_sources or [s for s in (config.source, *labelled_targets(config.data_dir))
                                      if s in data or has_table(s, config.data_dir)]
    cgs: list[CG] = []
    ys: list[np.ndarray] = []
    cap = config.lofo_max if config.lofo_max is not None else config.max_source
    for spec in dict.fromkeys(sources):
        if parse_target(spec)[0] == family:
            continue
        if spec not in data:
            data[spec] = load_labelled(spec, config.data_dir, progress=config.progress)
        part = data[spec]
        if cap is not None and cap < len(part):
            part = part.subset(subset_indices(len(part), cap, "lofo", spec, seed))
        cgs += part.cgs(progress=False)
        ys.append((part.labels - part.labels.mean()) / (part.labels.std() or 1.0))
    if not cgs:
        raise ValueError(f"no labelled family other than {family} to train a leave-one-family-out predictor")
    y = np.concatenate(ys) * 10.0 + 50.0  # accuracy-like scale: positive, as the FLOPs transform expects
    lofo_opts = {**opts, "min_train_accuracy": None}
    return cached_fit(config, lofo_opts, seed, cgs, y, [], tag="lofo")[0]


def dump_scores(config: TransferConfig, setting: str, target: str, seed: int, labels: np.ndarray,
                scores: dict[str, np.ndarray], tuned: Predictor | None = None,
                shot_labels: np.ndarray | None = None) -> Path | None:
    """Write the per-net scores of one evaluation to ``config.scores_dir`` (if set) as
    ``<setting>__<family>__<task>__seed<s>.npz``; returns its path.

    After fine-tuning (``tuned``, ``shot_labels``) also the fine-tuning nets' labels, the
    members' cross-fitted held-out scores on them and their folds (``shot_score_<i>`` in the
    order of ``shot_names``, ``shot_folds``), and the members' τ and weights — what any rule
    that weighs members from the fine-tuning labels needs, so rules can be compared offline
    (``benchmarks/weight_rules.py``)."""
    if not config.scores_dir:
        return None
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
    path = out / f"{stem}.npz"
    with atomic_writer(path) as handle:
        np.savez(handle, labels=np.asarray(labels, dtype=np.float64), names=np.array(list(scores)),
                 **{f"score_{i}": np.asarray(v, dtype=np.float64) for i, v in enumerate(scores.values())}, **extra)
    return path
