"""Fitting the protocol's predictors, with an on-disk fit cache and a shared pre-trained encoder.

Pipeline position: benchmark around model → CG → features → **predictor** (fitted once per seed
and training set) → evaluation across families.

A fit is cached under ``cache_dir/<prefix>seed<s>-<key>`` where ``key`` hashes everything that
determines it (:func:`fit_key`): options, seed, source, split, training nets and labels, package
version and code (the package's and this protocol's). The ``shared_encoder`` pre-training is cached
as ``cache_dir/encoder-<key>``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cgpredict.evaluation import stable_seed
from cgpredict.fileio import atomic_directory, atomic_write
from cgpredict.models.contrastive import ContrastiveEncoder
from cgpredict.predictor import Predictor
from cgpredict.provenance import code_fingerprint, package_roots

if TYPE_CHECKING:  # pragma: no cover
    from cgpredict.cg import CG

    from .config import TransferConfig

#: This package's folder: its code is part of the fit key too.
PROTOCOL_ROOT = Path(__file__).resolve().parent

SHARED_ENCODER_SEED = 0
"""Seed of the ``shared_encoder`` pre-training: fixed, so that every seed of a run — and runs
split over ``first_seed`` ranges — share one encoder."""

#: Pre-trained shared encoders of this process, by key.
_ENCODERS: dict[str, ContrastiveEncoder] = {}


def protocol_code() -> str:
    """:func:`~cgpredict.provenance.code_fingerprint` of the package and of this protocol package."""
    return code_fingerprint([*package_roots(), PROTOCOL_ROOT])


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


def learned_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The options that determine the trained members: with ``proxy_inputs=False`` the ``Proxy``
    member and its proxies do not touch training, so they are left out (and added after the fit)."""
    if opts.get("proxy_inputs", True) or "Proxy" not in opts.get("members", ()):
        return opts
    learned = {k: v for k, v in opts.items() if k not in ("proxy", "zero_cost", "proxy_inputs")}
    learned["members"] = [m for m in opts["members"] if m != "Proxy"]
    return learned


def fit_key(config: TransferConfig, opts: dict[str, Any], seed: int, cgs: Sequence[CG], labels: np.ndarray,
            n_unlabelled: int, tag: str, shared: bool = False) -> str:
    """Hash of everything that determines a fitted predictor of ``seed``: options, seed, the
    training nets (names) and labels, ``tag`` (its training sets), the package version and the
    code (:func:`protocol_code`: a code change refits instead of reusing a fit the old code made).
    Not the torch thread count: fits made with another count are reused."""
    from cgpredict import __version__

    data = hashlib.sha256(np.asarray(labels, dtype=np.float64).tobytes())
    data.update("\n".join(cg.name or "" for cg in cgs).encode())
    doc = {"version": __version__, "code": protocol_code(), "options": opts, "seed": seed,
           "source": config.source, "split": config.split, "max_source": config.max_source,
           "n_train": len(cgs), "n_unlabelled": n_unlabelled,
           "data": data.hexdigest()[:16], "tag": tag, **({"shared_encoder": True} if shared else {})}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_fit(config: TransferConfig, opts: dict[str, Any], seed: int, cgs: Sequence[CG], labels: np.ndarray,
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
    learned = learned_options(opts)
    path = None
    if config.cache_dir:
        key = fit_key(config, learned, seed, cgs, labels, len(unlabelled), tag, shared=encoder is not None)
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
            with atomic_directory(path) as tmp:
                torch.save(enc.module.state_dict(), tmp / "encoder.pt")
                atomic_write(tmp / "encoder.json", json.dumps({**doc, "state": enc.state(), "history": enc.history_}))
    _ENCODERS[key] = enc
    return enc


def adapted_encoder(encoder: ContrastiveEncoder, target: Sequence[CG], unlabelled: Sequence[CG], epochs: int,
                    seed: int) -> ContrastiveEncoder:
    """A copy of ``encoder`` trained ``epochs`` more epochs on the ``target`` CGs plus as many
    unlabelled source CGs (seeded sample): the transductive setting with a shared encoder."""
    rng = np.random.default_rng(stable_seed("transductive", seed))
    pick = rng.permutation(len(unlabelled))[: len(target)]
    enc = copy.deepcopy(encoder)
    enc.seed = seed
    return enc.fit(list(target) + [unlabelled[i] for i in pick], epochs=epochs)
