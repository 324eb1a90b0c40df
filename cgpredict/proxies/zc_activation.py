"""Activation-based training-free proxies: NASWOT and MeCo, scores and per-node statistics.

Pipeline position: model → CG → shared pass (:mod:`~cgpredict.proxies.zc_pass`) → **activation
proxies** → bank scores / node features → predictor.

* **NASWOT** (Mellor et al., "Neural Architecture Search without Training", ICML 2021): each
  ReLU's output on a batch of ``B`` images is binarised (unit active or not) into a code per
  sample; ``K[i, j] = Σ_relu (units where samples i and j agree)`` and the score is
  ``ln |det K|`` (``−inf`` when K is singular: two samples share every code, e.g. a network whose
  output ignores its input). Per node: ``ln |det K_l|`` of that ReLU's own kernel (NaN when singular).
  The paper's networks use ReLU; here every rectifier-type activation counts (ReLU6, leaky ReLU,
  GELU, SiLU, hard-swish: each is positive exactly where its input is, so "active" means the same),
  so MobileNet-, EfficientNet- and transformer-style networks have a NASWOT score too.
* **MeCo** (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
  Eigenvalue of Correlation", NeurIPS 2023): for every layer output, the ``C×C`` Pearson
  correlation matrix of its channels over the spatial positions of *one* sample; the score is the
  sum over layers of its smallest eigenvalue (a layer with a constant channel contributes its
  correlation with NaN entries set to 0). Per node: that smallest eigenvalue.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from cgpredict.proxies.zc_pass import PassData

__all__ = ["meco", "naswot", "naswot_kernel"]


def naswot_kernel(codes: torch.Tensor) -> torch.Tensor:
    """The NASWOT kernel of one layer's 0/1 codes ``(B, units)``: agreements between samples.

    ``K = C Cᵀ + (1−C)(1−C)ᵀ = 2 C Cᵀ − r 1ᵀ − 1 rᵀ + n`` with ``r`` the row sums and ``n`` the units;
    computed in float64 from a float32 product (exact: counts are integers below 2**24).
    """
    n = codes.shape[1]
    c = codes.to(torch.float32 if n < 2**24 else torch.float64)
    rows = c.sum(1).double()  # integer counts below 2**24: exact in float32, whatever the order
    return 2.0 * (c @ c.t()).double() - rows[:, None] - rows[None, :] + float(n)


def _logdet(kernel: torch.Tensor, singular: float = math.nan) -> float:
    sign, logdet = torch.linalg.slogdet(kernel)
    value = float(logdet)
    if float(sign) == 0:
        return singular
    return value if float(sign) > 0 and math.isfinite(value) else math.nan


def naswot(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(ln |det K|, per-node ln |det K_l|)``; NaN score when the network has no rectifier activation."""
    node = np.full(num_nodes, np.nan, dtype=np.float32)
    if not data.codes:
        return math.nan, node
    total = torch.zeros((data.batch, data.batch), dtype=torch.float64)
    for nid, codes in data.codes.items():
        k = naswot_kernel(codes)
        total += k
        node[nid] = _logdet(k)
    return _logdet(total, singular=-math.inf), node  # two samples with one code: ln 0


def _min_eig_corr(feats: torch.Tensor) -> torch.Tensor:
    """Smallest eigenvalue of the channel correlation matrix of each ``(C, N)`` map in a stack.

    With ``N <= C`` positions the centred ``(C, N)`` map has rank at most ``N - 1 < C``, so the
    ``C×C`` correlation is singular and its smallest eigenvalue is exactly 0: returned without the
    ``O(C³)`` eigen-decomposition (which would return rounding noise of order 1e-16 instead).
    """
    if feats.shape[-1] <= feats.shape[-2]:
        return torch.zeros(feats.shape[:-2], dtype=torch.float64)
    x = feats.double()
    x = x - x.mean(dim=-1, keepdim=True)
    norm = x.pow(2).sum(dim=-1, keepdim=True).sqrt()
    x = torch.where(norm > 0, x / norm.clamp_min(1e-300), torch.zeros_like(x))
    corr = x @ x.transpose(-1, -2)
    # a constant channel has an undefined correlation: 0 off the diagonal and (as in MeCo) 0 on it
    return torch.linalg.eigvalsh(corr)[..., 0]


def meco(data: PassData, num_nodes: int) -> tuple[float, np.ndarray]:
    """``(Σ_layers λ_min(corr), per-node λ_min)`` from the first sample's feature maps."""
    node = np.full(num_nodes, np.nan, dtype=np.float32)
    if not data.sample0:
        return math.nan, node
    # one eigen-decomposition per distinct map: an identity node's map is the very tensor of its input
    first: dict[tuple, int] = {}
    source: dict[int, int] = {}
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for nid, fm in data.sample0.items():
        key = (fm.data_ptr(), tuple(fm.shape), fm.stride(), fm.dtype)
        source[nid] = first.setdefault(key, nid)
        groups[tuple(fm.shape)].append(nid)
    total = 0.0
    for ids in groups.values():
        unique = [i for i in ids if source[i] == i]
        value = dict(zip(unique, _min_eig_corr(torch.stack([data.sample0[i] for i in unique])).tolist()))
        for nid in ids:  # summed in the order of the definition: shape groups, then node order
            v = value[source[nid]]
            node[nid] = v
            total += v
    return float(total), node
