"""Figures of ``make demo``: t-SNE of CG embeddings and predicted-vs-true scatter plots.

Pipeline position: model → CG → features → predictor → **ranking (reporting)**.

Both functions write a PNG with matplotlib's non-interactive ``Agg`` backend and return its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cgpredict.fileio import atomic_writer

#: Colours per group in the embedding plot (tab10 order).
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tsne_2d(points: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE (scikit-learn, PCA init, seeded) of ``points [N, d]``; perplexity is capped for small N."""
    from sklearn.manifold import TSNE

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < 3:
        raise ValueError(f"t-SNE needs at least 3 points of shape [N, d], got {points.shape}")
    perplexity = float(min(perplexity, max(1.0, (points.shape[0] - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)


def plot_embeddings(groups: Mapping[str, np.ndarray], centres: np.ndarray | None, path: str | Path,
                    title: str = "CG embeddings (t-SNE)", seed: int = 0) -> Path:
    """t-SNE of several groups of feature vectors (one colour each) with FCM centres as black crosses.

    Args:
        groups: ``{label: [N_i, d]}`` — e.g. NB-101 training CGs and a target family.
        centres: ``[C, d]`` cluster centres in the same space, or ``None``.
        path: PNG to write.
    """
    names = [k for k, v in groups.items() if len(v)]
    if not names:
        raise ValueError("plot_embeddings needs at least one non-empty group")
    blocks = [np.asarray(groups[k], dtype=np.float64) for k in names]
    if centres is not None:
        blocks.append(np.asarray(centres, dtype=np.float64))
    xy = tsne_2d(np.concatenate(blocks), seed=seed)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 6.5), dpi=120)
    start = 0
    for i, name in enumerate(names):
        n = len(groups[name])
        ax.scatter(xy[start:start + n, 0], xy[start:start + n, 1], s=12, alpha=0.65,
                   color=_COLOURS[i % len(_COLOURS)], label=f"{name} ({n})", edgecolors="none")
        start += n
    if centres is not None:
        c = xy[start:]
        ax.scatter(c[:, 0], c[:, 1], marker="X", s=150, color="black", edgecolors="white", linewidths=1.0,
                   label=f"FCM centres of the training family ({len(c)})", zorder=5)
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path)
    plt.close(fig)
    return path


def plot_pred_vs_true(true: np.ndarray, predicted: np.ndarray, score: np.ndarray, path: str | Path,
                      title: str, metrics: Mapping[str, float] | None = None, ood: np.ndarray | None = None) -> Path:
    """Two panels against the true accuracy: the ensemble's rank score (what ranking uses) and its
    predicted accuracy; OOD-flagged nets drawn as hollow markers."""
    true = np.asarray(true, dtype=np.float64)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=120)
    flag = np.zeros(true.size, dtype=bool) if ood is None else np.asarray(ood, dtype=bool)
    panels = ((axes[0], np.asarray(score, dtype=np.float64), "ensemble score (normalised rank, 1 = best)"),
              (axes[1], np.asarray(predicted, dtype=np.float64), "predicted accuracy (%)"))
    lo = float(np.percentile(true, 2)) - 1.0 if true.size >= 20 else float(true.min()) - 1.0
    hidden = int((true < lo).sum())
    for ax, values, label in panels:
        ax.set_xlim(lo, float(true.max()) + 0.5)
        if hidden:
            ax.annotate(f"{hidden} nets below {lo:.0f}% not shown", xy=(0.99, 0.01), xycoords="axes fraction",
                        ha="right", va="bottom", fontsize=8, color="0.4")
        ax.scatter(true[~flag], values[~flag], s=14, alpha=0.7, color=_COLOURS[0], label="in distribution")
        if flag.any():
            ax.scatter(true[flag], values[flag], s=16, alpha=0.7, facecolors="none", edgecolors=_COLOURS[3],
                       label="flagged OOD")
        ax.set_xlabel("true accuracy (%)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.25)
        ax.legend(loc="upper left", fontsize=9)
    if metrics:
        text = "  ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        axes[0].set_title(f"ranking: {text}", fontsize=10)
    axes[1].set_title("predicted accuracy (NB-101 scale, zero-shot)", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path)
    plt.close(fig)
    return path


def save_figure(fig: object, path: Path) -> None:
    """Write a matplotlib figure atomically (format from the suffix, PNG by default)."""
    fmt = path.suffix.lower().lstrip(".") or "png"
    with atomic_writer(path) as handle:
        fig.savefig(handle, format=fmt)  # type: ignore[attr-defined]
