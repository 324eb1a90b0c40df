"""Fuzzy C-means (scikit-fuzzy and NumPy backends), FCM features, OOD flags, FLOPs transform."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from skfuzzy.cluster import cmeans_predict

from cgpredict.models.fcm import FCMFeatures, FuzzyCMeans, OutOfDistributionWarning, fcm_numpy
from cgpredict.models.transform import FlopsTransform


def blobs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    label = rng.integers(0, 3, n)
    return centres[label] + rng.normal(0, 0.7, (n, 2)), centres


@pytest.mark.parametrize("backend", ["skfuzzy", "numpy"])
def test_fcm_memberships_sum_to_one_and_find_the_blobs(backend: str) -> None:
    x, centres = blobs()
    fcm = FuzzyCMeans(3, 2.0, backend=backend, seed=1).fit(x)
    u = fcm.predict(x)
    np.testing.assert_allclose(u.sum(1), 1.0)
    assert np.all(u >= 0)
    # every true centre has a fitted centre nearby
    gaps = np.linalg.norm(centres[:, None] - fcm.centers_[None], axis=2).min(1)
    assert gaps.max() < 0.3
    new = np.array([[6.1, 0.1], [0.2, 5.8]])
    u_new = fcm.predict(new)
    np.testing.assert_allclose(u_new.sum(1), 1.0)
    assert u_new.max(1).min() > 0.9  # new points near a centre belong to it


def test_predict_matches_skfuzzy_cmeans_predict() -> None:
    x, _ = blobs(seed=3)
    fcm = FuzzyCMeans(3, 2.5, seed=0).fit(x)
    new = np.random.default_rng(5).normal(2, 3, (20, 2))
    u_sk = cmeans_predict(new.T, fcm.centers_, 2.5, error=1e-12, maxiter=100, seed=0)[0].T
    np.testing.assert_allclose(fcm.predict(new), u_sk, atol=1e-6)


def test_numpy_and_skfuzzy_backends_agree() -> None:
    x, _ = blobs(seed=4)
    a = FuzzyCMeans(3, 2.0, backend="skfuzzy", seed=0).fit(x).centers_
    b = FuzzyCMeans(3, 2.0, backend="numpy", seed=0).fit(x).centers_
    assert np.linalg.norm(a[:, None] - b[None], axis=2).min(1).max() < 1e-4
    centers, u, iters = fcm_numpy(x, 3, 2.0, maxiter=5)
    assert iters == 5 and u.shape == (300, 3)


def test_fcm_state_round_trip_and_errors() -> None:
    x, _ = blobs()
    fcm = FuzzyCMeans(3, 3.0).fit(x)
    again = FuzzyCMeans.from_state(fcm.state())
    np.testing.assert_allclose(again.predict(x), fcm.predict(x))
    with pytest.raises(ValueError, match="fuzzifier"):
        FuzzyCMeans(3, 1.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        FuzzyCMeans(3).predict(x)
    with pytest.raises(ValueError, match="dimension 2"):
        fcm.predict(np.zeros((2, 5)))


def test_ood_flags_far_family_with_warning() -> None:
    x, _ = blobs()
    fcm = FuzzyCMeans(3, 2.0).fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        inside = fcm.ood(x[:50])  # the training family itself: no warning
    assert inside["flag"].mean() < 0.1
    far = np.random.default_rng(1).normal(30, 1, (40, 2))
    with pytest.warns(OutOfDistributionWarning, match="outside the training clusters"):
        out = fcm.ood(far)
    assert out["flag"].all()
    assert np.all(out["centroid_distance"] > inside["centroid_distance"].max())
    assert set(out) == {"max_membership", "centroid_distance", "flag"}


def test_fcm_features_pca_plus_flops() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(100, 40))
    gflops = rng.uniform(0.01, 2, 100)
    feats = FCMFeatures(32).fit(emb, gflops)
    out = feats.transform(emb, gflops)
    assert out.shape == (100, 33)
    assert out[:, -1].mean() == pytest.approx(0.0, abs=1e-9) and out[:, -1].std() == pytest.approx(1.0)
    again = FCMFeatures.from_state(feats.state())
    np.testing.assert_allclose(again.transform(emb[:5], gflops[:5]), out[:5])


def test_flops_transform_round_trip_and_formula() -> None:
    rng = np.random.default_rng(0)
    acc = rng.uniform(60, 95, 50)
    gflops = rng.uniform(0.01, 5, 50)
    tr = FlopsTransform().fit(acc, gflops)
    y = tr.transform(acc, gflops)
    assert y.mean() == pytest.approx(0.0, abs=1e-9) and y.std() == pytest.approx(1.0)
    np.testing.assert_allclose(tr.inverse(y, gflops), acc)
    ratio = acc / (np.log10(gflops + 1) + 1)
    np.testing.assert_allclose(y, (ratio - ratio.mean()) / ratio.std())
    plain = FlopsTransform(use_flops=False).fit(acc, gflops)
    np.testing.assert_allclose(plain.transform(acc, gflops), (acc - acc.mean()) / acc.std())
    np.testing.assert_allclose(FlopsTransform.from_state(tr.state()).inverse(y, gflops), acc)
    with pytest.raises(RuntimeError, match="not fitted"):
        FlopsTransform().transform(acc, gflops)
    with pytest.raises(ValueError, match="non-negative"):
        tr.transform(acc[:2], np.array([1.0, -1.0]))
