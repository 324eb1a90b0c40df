"""Figures of ``make demo``: the generalist's ranking against true accuracy, and a t-SNE of CG embeddings.

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


def plot_generalist(true: np.ndarray, score: np.ndarray, compare: Mapping[str, tuple[float, float]],
                    path: str | Path, title: str) -> Path:
    """Two panels: the generalist's ranking score against the true accuracy, and the Spearman /
    Kendall τ of each ranker in ``compare`` (``{name: (srcc, tau)}``, the generalist first) as bars."""
    true = np.asarray(true, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), dpi=120, gridspec_kw={"width_ratios": [1, 1.1]})
    lo = float(np.percentile(true, 2)) - 1.0 if true.size >= 20 else float(true.min()) - 1.0
    hidden = int((true < lo).sum())
    left.set_xlim(lo, float(true.max()) + 0.5)
    if hidden:
        left.annotate(f"{hidden} net{'s' if hidden > 1 else ''} below {lo:.0f}% not shown", xy=(0.99, 0.01),
                      xycoords="axes fraction", ha="right", va="bottom", fontsize=8, color="0.4")
    left.scatter(true, score, s=14, alpha=0.7, color=_COLOURS[0])
    left.set_xlabel("true accuracy (%)")
    left.set_ylabel("generalist score (ranks the set; not an accuracy)")
    left.grid(alpha=0.25)
    first = next(iter(compare.items()), None)
    if first is not None:
        left.set_title(f"{first[0]}: Spearman {first[1][0]:.3f}, Kendall τ {first[1][1]:.3f}", fontsize=10)
    names = list(compare)
    y = np.arange(len(names))
    srcc = [compare[n][0] for n in names]
    tau = [compare[n][1] for n in names]
    right.barh(y - 0.2, srcc, height=0.4, color=_COLOURS[0], label="Spearman")
    right.barh(y + 0.2, tau, height=0.4, color=_COLOURS[1], label="Kendall τ")
    for yi, (a, b) in enumerate(zip(srcc, tau)):
        right.annotate(f"{a:.3f}", xy=(max(a, 0), yi - 0.2), xytext=(3, 0), textcoords="offset points",
                       va="center", fontsize=8)
        right.annotate(f"{b:.3f}", xy=(max(b, 0), yi + 0.2), xytext=(3, 0), textcoords="offset points",
                       va="center", fontsize=8)
    right.set_yticks(y, names, fontsize=9)
    right.invert_yaxis()
    right.set_xlim(min(0.0, *srcc, *tau) - 0.05, 1.0)
    right.axvline(0, color="0.5", linewidth=0.8)
    right.set_title("ranking quality on the same nets", fontsize=10)
    right.legend(loc="lower right", fontsize=9)
    right.grid(alpha=0.25, axis="x")
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
