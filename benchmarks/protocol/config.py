"""Options of the GENNAPE transfer protocol: source, targets, settings, presets, sizes, caches.

Pipeline position: benchmark around model → CG → features → predictor → **evaluation across
families**. :class:`TransferConfig` holds every option with its default, once; the command line
(:mod:`protocol.cli`) reads its defaults from here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from cgpredict.evaluation import parse_spec as parse_target
from cgpredict.predictor import MEMBERS

#: Default source (``family/task``).
SOURCE = "nasbench101/cifar10"
#: Default targets (``--targets all``: every labelled family/task of the registry, see :func:`labelled_targets`).
DEFAULT_TARGETS: tuple[str, ...] = ("nasbench201/cifar10", "nasbench301/cifar10")
#: The protocol settings.
SETTINGS: tuple[str, ...] = ("zero-shot", "few-shot", "transductive", "lofo")
#: Default settings.
DEFAULT_SETTINGS: tuple[str, ...] = ("zero-shot", "few-shot")

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

#: What ``--quick`` changes: preset, one seed, capped sizes (``min`` with the given values).
QUICK = {"preset": "quick", "seeds": 1, "max_source": 80, "max_target": 60, "shots": 10, "finetune_epochs": 5}


def has_table(spec: str, data_dir: str | None = None) -> bool:
    """Whether the label table of ``family/task`` exists in the data folder."""
    from cgpredict.datasets import registry

    try:
        family, task = parse_target(spec)
        return registry.label_path(family, task, data_dir).is_file()
    except Exception:  # noqa: BLE001 - an unknown, unavailable or unlabelled family has no table
        return False


def labelled_targets(data_dir: str | None = None, exclude_family: str | None = None) -> list[str]:
    """Every ``family/task`` of the family registry whose label table is in the data folder, in
    registry order, leaving out the family ``exclude_family`` (the source's)."""
    from cgpredict.datasets import registry

    out = []
    for family in registry.list_families():
        if family == exclude_family or not registry.is_available(family):
            continue
        out += [f"{family}/{task}" for task in registry.tasks(family) if has_table(f"{family}/{task}", data_dir)]
    return out


@dataclass
class TransferConfig:
    """Options of one protocol run (see :mod:`protocol`).

    Attributes:
        source: ``family/task`` of the labelled training family.
        targets: ``family/task`` of every target.
        seeds: number of seeds (``first_seed .. first_seed + seeds - 1``).
        first_seed: the first seed.
        settings: any of :data:`SETTINGS`.
        shots: labelled target nets for fine-tuning.
        finetune_epochs, finetune_batch: fine-tuning schedule (the protocol's batch 1 by default).
        weight_folds: folds of the cross-fitted Kendall τ behind the fine-tuned ensemble weights
            (``Predictor.finetune``; 0 = in-sample τ).
        n_unlabelled: extra unlabelled source CGs (sampled from the builder) for the encoder/FCM.
        shared_encoder: pre-train the encoder once on the ``n_unlabelled`` CGs (``predictor``'s
            encoder options, e.g. its epochs) and share it across seeds.
        adapt_epochs: with ``shared_encoder``, epochs of the transductive encoder adaptation.
        split: train/val/test fractions of the source family.
        bags: source predictors per seed (``1``: one :class:`Predictor`; ``K > 1``: a
            :class:`~cgpredict.predictor.PredictorBag` of K fits with seeds ``s + 1000k`` on the same
            split, each cached on its own). Zero-shot and few-shot settings only.
        members: ensemble members.
        preset: ``full``, ``reduced`` or ``quick`` (:data:`PRESETS`); ``predictor`` overrides its entries.
        predictor: overrides of the preset's Predictor options.
        max_source, max_target: cap the nets used per family (``None`` = all; for smoke tests).
        lofo_sources: source families for ``lofo`` (``None`` = the source and every labelled
            family/task of the registry, less the target's family).
        lofo_max: cap on the nets of each ``lofo`` source family/task (seeded subset; ``None`` =
            ``max_source``).
        data_dir: labelled-data folder (default ``$CGPREDICT_DATA``).
        cache_dir: if set, every fitted source (and ``lofo``) predictor is saved there, one
            sub-folder per hash of what determines the fit (options, seed, training nets and labels,
            package version, code), and loaded instead of refitted by a later run with the same inputs.
        scores_dir: if set, every evaluated ``(setting, target, seed)`` writes
            ``<setting>__<family>__<task>__seed<s>.npz`` with the labels and every method's
            per-net scores, for analyses beyond the report.
        progress: tqdm bars.
    """

    source: str = SOURCE
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    seeds: int = 5
    first_seed: int = 0
    settings: list[str] = field(default_factory=lambda: list(DEFAULT_SETTINGS))
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
        bad = [s for s in self.settings if s not in SETTINGS]
        if bad:
            raise ValueError(f"unknown setting(s) {bad}; choose from {sorted(SETTINGS)}")
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
