"""Train the shipped GENNAPE checkpoint ``cgpredict/checkpoints/nb101`` (reproducible, seeded).

Pipeline position: model → CG → features → **predictor (pre-training)** → ranking/search.

What it does (GENNAPE, Mills et al., AAAI'23, at a size that fits a 2-core CI machine):

1. Samples ``--unlabelled`` NAS-Bench-101 architectures (``cgpredict.datasets.sample``, seed
   ``--seed + 1``) and converts them to CGs (cached under ``~/.cache/cgpredict``).
2. Pre-trains the contrastive encoder on those unlabelled CGs only (``Predictor.fit_encoder``; the
   predictor reads every CG in canonical form, :mod:`cgpredict.canonical`), and fits the input
   standardisation and fuzzy C-means clusters of the ``+FCM`` members on the embeddings of the
   unlabelled and labelled CGs together — no labels are used for either.
3. Trains the heads (and the k-GNN) on the labelled NB-101 table (``$CGPREDICT_DATA``; nets below
   80 % dropped, as in the paper): first on a seeded 80 % split, scored on the other 20 %
   (held-out SRCC / Kendall τ / NDCG@10 / MAE), then from scratch on all labelled nets — that is
   the shipped model.
4. Optionally scores the shipped model zero-shot on NB-201 CIFAR-10 (``--zero-shot-n``).
5. Writes ``config.json`` + ``weights.pt`` + ``manifest.json`` (``Predictor.save``) and
   ``MODEL_CARD.md`` with the sizes, seeds, timings and metrics actually measured (the manifest
   is then rewritten to cover the card too).

Run::

    CGPREDICT_DATA=/path/to/data OMP_NUM_THREADS=1 python benchmarks/train_pretrained.py
    python benchmarks/train_pretrained.py --quick -o /tmp/ckpt     # a 1-minute smoke run

The encoder is pre-trained once (``predictor.fit_encoder(unlabelled)``) and shared by the
held-out run and the final model, whose heads are trained with
``Predictor.fit(labelled, y, unlabelled=..., refit_encoder=False)``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import torch

from cgpredict import __version__
from cgpredict.cg import CG
from cgpredict.metrics import kendall_tau, mae, ndcg_at_k, spearman
from cgpredict.fileio import atomic_write
from cgpredict.models.graph_data import flops_of
from cgpredict.predictor import CHECKPOINT_DIR, Predictor
from cgpredict.predictor.checkpoint import write_manifest

FAMILY = "nasbench101"
MIN_ACC = 80.0

#: Member sizes of the shipped checkpoint. Smaller than the paper's (heads 4x256, pairwise 128,
#: 50k unlabelled CGs) so that the checkpoint stays ~4 MB and training fits ~15 min on 2 cores.
FULL = {
    "unlabelled": 2500,
    "encoder": {"epochs": 5, "batch_size": 128},
    "regressor": {"epochs": 200, "hidden": 128, "hidden_layers": 3, "flops_transform": False},
    "pairwise": {"epochs": 60, "hidden": 64},
    "kgnn": {"epochs": 60, "flops_transform": False, "loss": "mse+hinge"},
    "n_clusters": 10,
    "m": 2.0,
}
QUICK = {
    "unlabelled": 120,
    "encoder": {"epochs": 1, "batch_size": 64},
    "regressor": {"epochs": 10, "hidden": 128, "hidden_layers": 3, "flops_transform": False},
    "pairwise": {"epochs": 3, "hidden": 64},
    "kgnn": {"epochs": 3, "flops_transform": False},
    "n_clusters": 4,
    "m": 2.0,
}


def _metrics(y: np.ndarray, pred: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """SRCC/KT/NDCG@10 of the ensemble score and MAE of the predicted accuracies."""
    return {"srcc": spearman(y, score), "kendall_tau": kendall_tau(y, score), "ndcg@10": ndcg_at_k(y, score, 10),
            "srcc_predict": spearman(y, pred), "mae_predict": mae(y, pred)}


def new_predictor(sizes: dict[str, Any], seed: int, progress: bool, canonical: bool = True) -> Predictor:
    """An unfitted Predictor with the shipped sizes (reading canonical CGs unless ``canonical=False``)."""
    return Predictor(encoder=dict(sizes["encoder"]), regressor=dict(sizes["regressor"]),
                     pairwise=dict(sizes["pairwise"]), kgnn=dict(sizes["kgnn"]), n_clusters=sizes["n_clusters"],
                     m=sizes["m"], min_train_accuracy=MIN_ACC, canonical=canonical, seed=seed, progress=progress)


def fit_heads(p: Predictor, cgs: list[CG], y: np.ndarray, unl_cgs: list[CG]) -> Predictor:
    """Train ``p``'s heads and k-GNN on labelled CGs, keeping its (pre-trained) encoder; input
    standardisation and FCM clusters are fitted on labelled + unlabelled embeddings (label-free);
    nets below :data:`MIN_ACC` are dropped by the predictor (``min_train_accuracy``)."""
    return p.fit(cgs, y, unlabelled=unl_cgs, refit_encoder=False)


def copy_encoder(src: Predictor, dst: Predictor) -> None:
    """Give ``dst`` the trained encoder of ``src``."""
    dst.encoder.module.load_state_dict(src.encoder.module.state_dict())
    dst.encoder.load_state(src.encoder.state())
    dst.encoder.module.eval()


def model_card(info: dict[str, Any]) -> str:
    """The MODEL_CARD.md text."""
    s = info["sizes"]
    target = ("GENNAPE's eq. 5, Z(A / (log10(GFLOPs+1)+1))" if s["regressor"].get("flops_transform", True) else
              "Z(accuracy) — the eq. 5 FLOPs transform is off (`--flops-transform` turns it on): on NB-101 the "
              "transformed target falls with FLOPs (Spearman −0.80) and the heads carry that into other families, "
              "see `benchmarks/results/transfer_full_eq5.md`")

    def row(name: str, m: dict[str, float] | None) -> str:
        if not m:
            return f"| {name} | – | – | – | – | – |"
        return (f"| {name} | {m['srcc']:.3f} | {m['kendall_tau']:.3f} | {m['ndcg@10']:.3f} | "
                f"{m['srcc_predict']:.3f} | {m['mae_predict']:.2f} |")

    zs = info.get("zero_shot")
    zs_line = (f"NB-201 CIFAR-10, {zs['n']} nets (seed {info['seed']}), zero-shot (no NB-201 labels used)"
               if zs else "NB-201 zero-shot: not measured in this run")
    members = ", ".join(info["members"])
    fs = info.get("few_shot")
    few_line = (f"NB-201 CIFAR-10, fine-tuned on {fs['n_finetune']} nets (100 epochs), scored on the other {fs['n']}"
                if fs else "NB-201 few-shot: not measured in this run")
    mz = info.get("members_zero_shot") or {}
    member_line = ("\nZero-shot NB-201 SRCC of each member alone: "
                   + ", ".join(f"{k} {v:.3f}" for k, v in mz.items()) + "." if mz else "")
    weak = [k for k in ("CL+FCM+T", "CL+T") if k in mz and "FLOPs" in mz and mz[k] < mz["FLOPs"]]
    if weak:
        member_line += (f" The accuracy regressors ({', '.join(weak)}) transfer worse than FLOPs alone here: NB-201"
                        f" nets (median {info['mmacs_median']['nb201']:.0f} MMACs) sit at the bottom of NB-101's"
                        f" MAC range (median {info['mmacs_median']['nb101']:.0f} MMACs) and far from its"
                        " embeddings, so the regressors extrapolate. `Predictor.adapt(target_cgs)` re-centres the"
                        " heads' inputs on the target family without labels; fine-tuning on a few labelled target nets"
                        " also re-weights the members by Kendall τ (row above).")
    return f"""# cgpredict pretrained predictor `nb101`

GENNAPE ensemble (Mills et al., AAAI'23, reimplemented in cgpredict {info['cgpredict_version']})
pre-trained on NAS-Bench-101. Load with `cgpredict.predictor.Predictor.pretrained("nb101")` (or
`Predictor.load(<this folder>)`); weights load with `torch.load(..., weights_only=True)`.

Members: {members}. Zero-shot the members are averaged with equal weights;
`Predictor.finetune` (or `cgpredict finetune`) re-weights them on your labelled nets from their
scores cross-fitted over 2 folds (`weight_folds`): by default a non-negative least-squares fit of
the labels' ranks on the members' ranks (`weighting="stacked"`), or GENNAPE's softmax(τ / 0.1) of
their Kendall τ (`weighting="kendall"`). The checkpoint's `config.json` names
`weighting="{info['weighting']}"`.

## Training data and procedure

* **Unlabelled CGs** (contrastive encoder, FCM clusters, input standardisation):
  {s['unlabelled']} NB-101 architectures from `cgpredict.datasets.sample("nasbench101", {s['unlabelled']},
  seed={info['seed'] + 1})`, converted with `from_torch` at input (1, 3, 32, 32). The paper used
  50k; this size keeps the whole script within ~15 min on a 2-core CPU.
  A 20k-CG encoder was measured and not adopted (`benchmarks/results/transfer_shared_encoder.md`:
  better zero-shot NB-201, worse NB-301).
* **Canonical CGs**: the predictor reads every CG — training, evaluation and yours — in its
  canonical form (`cgpredict.canonical.canonicalize`: batch norm folded into its conv/linear, pools,
  pads and splits normalised; `"canonical": {str(info['canonical']).lower()}` in `config.json`), so
  `from_torch`, ONNX dynamo and legacy ONNX exports of one network get one prediction.
* **Labelled nets** (heads, k-GNN): the {info['n_labelled']} rows of `naslib/nasbench101__cifar10.csv`
  (validation accuracy, 108 epochs); nets below {MIN_ACC:g}% dropped for training as in the paper.
* Encoder: k-GNN (4 layers) + Transformer branch, 128-dim embedding, spectral contrastive loss,
  {s['encoder']['epochs']} epochs, batch {s['encoder']['batch_size']}.
  FCM: C = {s['n_clusters']}, m = {s['m']:g} (fixed, no grid search).
  Regression target of CL(+FCM)+T and k-GNN: {target}.
  Heads: CL(+FCM)+T regressors {s['regressor']['hidden_layers']}×{s['regressor']['hidden']} hidden,
  {s['regressor']['epochs']} epochs (paper: 4×256); pairwise classifiers hidden {s['pairwise']['hidden']},
  {s['pairwise']['epochs']} epochs (paper: 128); k-GNN (6 layers, hidden 32) {s['kgnn']['epochs']} epochs,
  loss {s['kgnn'].get('loss', 'mse')}.
* Seed {info['seed']} everywhere; `OMP_NUM_THREADS={info['omp']}`; torch {info['torch']}, {info['platform']}.
* Reproduce: `CGPREDICT_DATA=<data> OMP_NUM_THREADS=1 python benchmarks/train_pretrained.py`
  (command used: `{info['command']}`).
* Training time: {info['times']['total']:.0f} s in total on this machine
  (CG conversion {info['times']['convert']:.0f} s, encoder {info['times']['encoder']:.0f} s,
  heads on the split {info['times']['heads_split']:.0f} s, final heads {info['times']['heads_final']:.0f} s,
  zero-shot evaluation {info['times'].get('zero_shot', 0.0):.0f} s, few-shot check
  {info['times'].get('few_shot', 0.0):.0f} s). CG conversion is quick when `~/.cache/cgpredict` already
  holds the CGs; converting the ~3,000 NB-101 CGs from scratch adds about 3 min on 2 cores.

## Metrics

SRCC / KT / NDCG@10 rank by the ensemble score (`Predictor.score`); "SRCC acc" and "MAE" use the
predicted accuracy (`Predictor.predict`, mean of the regressing members).

| evaluation | SRCC | Kendall τ | NDCG@10 | SRCC acc | MAE (pp) |
|---|---|---|---|---|---|
{row(f"NB-101 held-out {info['n_holdout']} nets (model trained on the other {info['n_train_split']})", info.get('holdout'))}
{row(zs_line, zs)}
{row(few_line, info.get('few_shot'))}
{member_line}

The held-out row comes from a model with the same encoder whose heads were trained on the 80 %
split only; the shipped heads were then retrained on all labelled NB-101 nets.

## Limits

Trained only on NB-101 CIFAR-10 cells at 32×32 input; predictions on other families are zero-shot
and should be checked with `Predictor.ood` (the `cgpredict predict` OOD flag). Accuracies on other
families are on NB-101's scale; use the ranking, or fine-tune on a few labelled nets of yours.
"""


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate and write the checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", default=str(CHECKPOINT_DIR / "nb101"), help="checkpoint folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unlabelled", type=int, default=None, help="number of unlabelled NB-101 CGs")
    parser.add_argument("--encoder-epochs", type=int, default=None)
    parser.add_argument("--zero-shot-n", type=int, default=725,
                        help="NB-201 CIFAR-10 nets for the zero-shot check (0 = skip)")
    parser.add_argument("--few-shot-n", type=int, default=50,
                        help="NB-201 nets to fine-tune a copy on, scored on the other zero-shot nets (0 = skip)")
    parser.add_argument("--data", default=None, help="labelled-data folder (default $CGPREDICT_DATA)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    parser.add_argument("--flops-transform", action="store_true",
                        help="regress GENNAPE's eq. 5 target A/(log10(GFLOPs+1)+1) instead of Z(accuracy) "
                             "(off by default: it transfers worse, see benchmarks/results/transfer_*.md)")
    parser.add_argument("--no-canonical", action="store_true",
                        help="train on CGs as converted, not their canonical forms (for comparison only: "
                             "sources of one network then get different predictions)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    progress = not args.no_progress
    sizes = json.loads(json.dumps(QUICK if args.quick else FULL))
    if args.unlabelled is not None:
        sizes["unlabelled"] = args.unlabelled
    if args.encoder_epochs is not None:
        sizes["encoder"]["epochs"] = args.encoder_epochs
    if args.flops_transform:
        sizes["regressor"]["flops_transform"] = sizes["kgnn"]["flops_transform"] = True
    from cgpredict.datasets import load_family

    torch.manual_seed(args.seed)
    times: dict[str, float] = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    labelled = load_family(FAMILY, task="cifar10", data_dir=args.data)
    lab_cgs = labelled.cgs(progress=progress)
    y = np.asarray(labelled.labels, dtype=np.float64)
    unl_cgs = load_family(FAMILY, n=sizes["unlabelled"], seed=args.seed + 1).cgs(progress=progress)
    times["convert"] = time.perf_counter() - t0
    print(f"{len(unl_cgs)} unlabelled and {len(lab_cgs)} labelled NB-101 CGs ({times['convert']:.0f} s)", flush=True)

    t0 = time.perf_counter()
    base = new_predictor(sizes, args.seed, progress, canonical=not args.no_canonical)
    base.fit_encoder(unl_cgs)
    times["encoder"] = time.perf_counter() - t0
    print(f"encoder pre-trained on {len(unl_cgs)} unlabelled CGs ({times['encoder']:.0f} s); "
          f"final loss {base.encoder.history_[-1]:.3f}", flush=True)

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(lab_cgs))
    n_hold = int(round(0.2 * len(order)))
    hold, train = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    fit_heads(base, [lab_cgs[i] for i in train], y[train], unl_cgs)
    hold_cgs = [lab_cgs[i] for i in hold]
    holdout = _metrics(y[hold], base.predict(hold_cgs), base.score(hold_cgs))
    times["heads_split"] = time.perf_counter() - t0
    print("held-out NB-101:", {k: round(v, 3) for k, v in holdout.items()}, flush=True)

    t0 = time.perf_counter()
    final = new_predictor(sizes, args.seed, progress, canonical=not args.no_canonical)
    copy_encoder(base, final)
    fit_heads(final, lab_cgs, y, unl_cgs)
    times["heads_final"] = time.perf_counter() - t0
    out = final.save(args.out)

    zero_shot, members_zs, few_shot = None, {}, None
    mmacs_median = {"nb101": float(np.median(flops_of(lab_cgs))) * 1e3}
    if args.zero_shot_n > 0:
        t0 = time.perf_counter()
        nb201 = load_family("nasbench201", task="cifar10", data_dir=args.data)
        if args.zero_shot_n < len(nb201):
            pick = np.sort(np.random.default_rng(args.seed).choice(len(nb201), args.zero_shot_n, replace=False))
            nb201 = nb201.subset(pick)
        cgs201 = nb201.cgs(progress=progress)
        y201 = np.asarray(nb201.labels)
        zero_shot = {**_metrics(y201, final.predict(cgs201), final.score(cgs201)), "n": len(cgs201)}
        mmacs_median["nb201"] = float(np.median(flops_of(cgs201))) * 1e3
        members_zs = {k: spearman(y201, v) for k, v in final.member_scores(cgs201).items()}
        times["zero_shot"] = time.perf_counter() - t0
        print("zero-shot NB-201 cifar10:", {k: round(v, 3) for k, v in zero_shot.items()}, flush=True)
        print("zero-shot NB-201 SRCC per member:", {k: round(v, 3) for k, v in members_zs.items()}, flush=True)
        if args.few_shot_n and args.few_shot_n < len(cgs201) - 10:
            t0 = time.perf_counter()
            order201 = np.random.default_rng(args.seed).permutation(len(cgs201))
            ft_idx, ev_idx = order201[: args.few_shot_n], order201[args.few_shot_n:]
            tuned = Predictor.load(out, progress=progress)  # a copy: the shipped model stays zero-shot
            tuned.finetune([cgs201[i] for i in ft_idx], y201[ft_idx], epochs=100)
            ev = [cgs201[i] for i in ev_idx]
            few_shot = {**_metrics(y201[ev_idx], tuned.predict(ev), tuned.score(ev)), "n": len(ev),
                        "n_finetune": int(ft_idx.size)}
            times["few_shot"] = time.perf_counter() - t0
            print("few-shot NB-201 cifar10:", {k: round(v, 3) for k, v in few_shot.items()}, flush=True)

    times["total"] = time.perf_counter() - t_all
    info = {
        "cgpredict_version": __version__, "seed": args.seed, "canonical": final.canonical, "weighting": final.weighting, "sizes": sizes, "members": final.members,
        "n_labelled": len(lab_cgs), "n_holdout": int(hold.size), "n_train_split": int(train.size),
        "holdout": holdout, "zero_shot": zero_shot, "members_zero_shot": members_zs, "few_shot": few_shot,
        "mmacs_median": mmacs_median,
        "times": times,
        "omp": os.environ.get("OMP_NUM_THREADS", "unset"), "torch": torch.__version__,
        "platform": f"{platform.machine()} {os.cpu_count()} CPUs",
        "command": "python benchmarks/train_pretrained.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    atomic_write(out / "MODEL_CARD.md", model_card(info))
    write_manifest(out)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"wrote {out} ({size / 1e6:.2f} MB) in {times['total']:.0f} s")
    return 0


if __name__ == "__main__":
    from cgpredict.quiet import hide_known_warnings

    hide_known_warnings()
    raise SystemExit(main())
