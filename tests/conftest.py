"""Shared pytest configuration: data location, slow and GPU markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    """The labelled-data folder (CGPREDICT_DATA, else ../shared/data beside the checkout), or None."""
    env = os.environ.get("CGPREDICT_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if (path / "naslib").is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the labelled benchmark tables; skips the test when they are absent."""
    path = data_dir()
    if path is None:
        pytest.skip("labelled data not found (set CGPREDICT_DATA)")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = os.environ.get("CGPREDICT_SLOW") == "1" or "slow" in (config.getoption("-m") or "")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_cuda = False
    skip_slow = pytest.mark.skip(reason="slow test: set CGPREDICT_SLOW=1 (make test-all) to run")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture()
def broken_cg():
    """An image CG that cannot be rebuilt or run (an op without an executable meaning)."""
    from cgpredict.cg import CGBuilder

    b = CGBuilder("broken")
    x = b.add("input", [], (1, 3, 16, 16))
    c = b.add("conv", [x], (1, 8, 8, 8), weight_shape=(8, 3, 3, 3), kernel=(3, 3), stride=(2, 2),
              padding=(1, 1), dilation=(1, 1), params=216)
    u = b.add("unknown", [c], (1, 8, 8, 8), source_op="roll")
    p = b.add("global_pool", [u], (1, 8, 1, 1))
    b.add("output", [p], (1, 8, 1, 1))
    return b.build()
